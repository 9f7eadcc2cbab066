"""The HEAR API over any duet checkpoint, so the benchmarks researchers run (HEAR 2021,
hear-eval-kit, and the tools that adopted its interface) can evaluate a duet encoder as it is.

    from duet.training import hear
    model = hear.load_model("runs/alonso-co/checkpoint.pt")
    scene = hear.get_scene_embeddings(audio, model)          # [n_sounds, scene_embedding_size]
    frames, ms = hear.get_timestamp_embeddings(audio, model)  # [n, T, size], [n, T] in ms

``audio`` is ``[n_sounds, n_samples]`` float32 in −1…1 at ``model.sample_rate`` (the rate the
checkpoint was trained at: 22 050 Hz for CLMR and PEMR, the mel profile's 16 kHz otherwise);
``sample_rate=`` resamples audio at another rate first (soxr HQ, as the shards job does).
The encoder sees exactly what it saw in training: waveform windows of the view's length, or the
profile's log-mel computed on the device (``training.features.LogMel``) standardised with the
band statistics stored in the checkpoint. A scene embedding is the recipe's paper's summary
(``training.summary``) over non-overlapping windows; a timestamp embedding is the encoder's
output for the window centred on the timestamp, every ``hop_ms`` (50 ms) from 0.

Turian et al., HEAR: Holistic Evaluation of Audio Representations, NeurIPS 2021 competition
track (the API: ``load_model``, ``get_scene_embeddings``, ``get_timestamp_embeddings`` and the
model's ``sample_rate``, ``scene_embedding_size``, ``timestamp_embedding_size``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from duet.errors import DuetError
from duet.training import checkpoint, data, summary, systems

BATCH = 32


class DuetHearModel(nn.Module):
    """A checkpoint's encoder behind the HEAR interface (see the module docstring)."""

    def __init__(self, system: systems.System, recipe: dict, stats: dict | None, hop_ms: float):
        super().__init__()
        self.system = system.eval()
        self.recipe = recipe
        view = next(v for v in recipe["views"] if v.stream)
        self.summary = summary.default_summary(recipe)
        self.mel = None
        if view.stream.startswith("mel-"):
            from duet.pipelines.audio.mel import presets
            from duet.training.features import LogMel

            profile = presets().get(view.profile or view.stream.removeprefix("mel-"))
            if profile is None:
                raise DuetError(f"{recipe['name']} was trained on imported features "
                                f"({view.stream}), which no waveform reproduces: HEAR needs a "
                                f"checkpoint trained on a mel duet computes from audio")  # fmt: skip
            if not stats or profile.name not in stats:
                raise DuetError(f"the checkpoint has no band statistics of mel-{profile.name}: "
                                f"pass load_model(path, data_uri=ROOT) with the dataset it was "
                                f"trained on")  # fmt: skip
            self.mel = LogMel(profile)
            self.register_buffer("mean", torch.as_tensor(stats[profile.name]["mean"]).float())
            self.register_buffer("std", torch.as_tensor(stats[profile.name]["std"]).float())
            self.sample_rate = int(profile.sample_rate)
            self.hop = int(profile.hop_length)
            frames = summary.window_length(recipe, view.length, self.summary)
            self.scene_window = (frames - 1) * self.hop  # centred STFT: exactly `frames` frames
            self.timestamp_window = (view.length - 1) * self.hop
        else:
            self.sample_rate = int(view.stream.removeprefix("wav-"))
            self.scene_window = self.timestamp_window = view.length
        self.hop_ms = hop_ms
        with torch.no_grad():
            silence = torch.zeros(1, self.timestamp_window)
            self.timestamp_embedding_size = int(self._embed(silence).shape[1])
            self.scene_embedding_size = int(self._scene(torch.zeros(self.scene_window)).shape[0])

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        if self.mel is None:
            return wave
        return (self.mel(wave) - self.mean) / self.std

    def _embed(self, windows: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.system.embed(self._features(windows[i : i + BATCH]))
                          for i in range(0, len(windows), BATCH)])  # fmt: skip

    def _scene(self, wave: torch.Tensor) -> torch.Tensor:
        """One sound ``[samples]`` → its summary over non-overlapping windows (the last one
        zero-padded, a sound shorter than a window padded to one)."""
        count = max(1, -(-len(wave) // self.scene_window))
        padded = torch.nn.functional.pad(wave, (0, count * self.scene_window - len(wave)))
        windows = self._features(padded.reshape(count, self.scene_window))
        vector = summary.track_vector(self.system, windows.cpu().numpy(), self.summary,
                                      windows.device, BATCH)  # fmt: skip
        return torch.from_numpy(vector)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.scene(audio)

    def scene(self, audio: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([self._scene(sound) for sound in audio]).float()

    def timestamps(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, samples = audio.shape
        hop = self.sample_rate * self.hop_ms / 1000.0
        count = int(samples // hop) + 1
        starts = np.round(np.arange(count) * hop).astype(np.int64)
        half = self.timestamp_window // 2
        padded = torch.nn.functional.pad(audio, (half, self.timestamp_window - half))
        with torch.no_grad():
            rows = []
            for sound in padded:
                windows = torch.stack([sound[s : s + self.timestamp_window] for s in starts])
                rows.append(self._embed(windows))
        stamps = torch.arange(count, dtype=torch.float64) * self.hop_ms  # the window's centre
        stamps = stamps.float()  # within half a sample (rounding the start to a sample)
        return torch.stack(rows).float(), stamps.expand(n, count).contiguous()


def load_model(model_file_path: str, data_uri: str | None = None, hop_ms: float = 50.0,
               device: str = "cpu") -> DuetHearModel:  # fmt: skip
    """A duet checkpoint (``checkpoint.pt`` of ``duet train``, local path or URI) as a HEAR
    model. ``data_uri``: the dataset root it was trained on, for the mel band statistics of a
    checkpoint that does not store them. Raises ``DuetError`` (``CheckpointError``) for an
    unreadable checkpoint or a mel the waveform cannot reproduce."""
    from duet.training.runfiles import read

    blob = read(model_file_path, None)
    if blob is None:
        raise checkpoint.CheckpointError(f"{model_file_path}: no such checkpoint")
    saved = checkpoint.loads(blob, model_file_path)
    recipe = {**saved["recipe"], "views": tuple(data.View(**v) for v in saved["recipe"]["views"])}
    system = systems.build(recipe, saved["dims"])
    system.load_state_dict(saved["model"])
    stats = saved.get("stats")
    if data_uri is not None:
        from duet.training.store import Store

        root = data.Root(Store(data_uri))
        stats = {v.profile: {"mean": root.stats(v.profile).mean, "std": root.stats(v.profile).std}
                 for v in recipe["views"] if v.profile}  # fmt: skip
    return DuetHearModel(system, recipe, stats, hop_ms).to(device)


def _at_rate(audio: torch.Tensor, model: DuetHearModel, sample_rate: int | None) -> torch.Tensor:
    if audio.dim() != 2:
        raise DuetError(f"audio must be [n_sounds, n_samples], got shape {tuple(audio.shape)}")
    if sample_rate is None or sample_rate == model.sample_rate:
        return audio.float()
    import soxr

    rows = [soxr.resample(a.cpu().numpy().astype(np.float32), sample_rate, model.sample_rate,
                          quality="HQ") for a in audio]  # fmt: skip
    return torch.from_numpy(np.stack(rows)).to(audio.device)


def get_scene_embeddings(audio: torch.Tensor, model: DuetHearModel,
                         sample_rate: int | None = None) -> torch.Tensor:  # fmt: skip
    """``[n_sounds, n_samples]`` → ``[n_sounds, model.scene_embedding_size]`` float32."""
    return model.scene(_at_rate(audio, model, sample_rate))


def get_timestamp_embeddings(audio: torch.Tensor, model: DuetHearModel,
                             sample_rate: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``[n_sounds, n_samples]`` → embeddings ``[n_sounds, T, model.timestamp_embedding_size]``
    and their timestamps ``[n_sounds, T]`` in milliseconds (window centres, every
    ``model.hop_ms`` from 0), both float32."""
    return model.timestamps(_at_rate(audio, model, sample_rate))
