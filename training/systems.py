"""What each published system computes from a batch of views: encoders, projections and the
loss. ``forward(views, generator)`` returns the loss (so DDP sees one forward per step);
``embed(audio)`` is the representation ``duet embed`` writes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from duet.errors import DuetError
from duet.training import augment, losses, models


class Contrastive(nn.Module):
    """CLMR and Alonso-Jiménez et al.: audio encoder + projector, NT-Xent between two views;
    an embedding view (Playlist W2V) gets its own projector."""

    def __init__(self, recipe: dict, vector_dim: int | None = None):
        super().__init__()
        self.recipe = {k: recipe[k] for k in ("augment", "sample_rate")}
        self.temperature: float = recipe["temperature"]
        self.encoder = models.BACKBONES[recipe["backbone"]]()
        hidden, out = recipe["projector"]["hidden"], recipe["projector"]["out"]
        self.projector = models.projector(self.encoder.dim, hidden, out)
        self.vector_projector = models.projector(vector_dim, hidden, out) if vector_dim else None

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        return self.encoder(audio)

    def forward(self, views: list[torch.Tensor], g: torch.Generator) -> torch.Tensor:
        kind = self.recipe["augment"]
        if kind == "clmr":
            views = [augment.clmr_chain(v, self.recipe["sample_rate"] or 22050, g) for v in views]
        elif kind == "simclr_mix":
            views = [augment.simclr_mix(views[0], g), augment.simclr_mix(views[0], g)]
        za = self.projector(self.encoder(views[0]))
        if self.vector_projector is not None:
            zb = self.vector_projector(views[1])
        else:
            zb = self.projector(self.encoder(views[1]))
        return losses.nt_xent(za, zb, self.temperature)


class Choi(nn.Module):
    """Choi et al.: 5-layer 2D CNN on 188-frame mel segments, InfoNCE with in-batch negatives;
    ``multi_level`` adds a linear head on each conv layer and sums the five losses (640-d)."""

    mean: torch.Tensor  # buffers of the self-augmented variant: the published band statistics
    std: torch.Tensor

    def __init__(self, recipe: dict):
        super().__init__()
        self.self_augmented = recipe["augment"] == "choi"
        if self.self_augmented:  # waveforms in, augmented twice, mel on the device
            from duet.training.features import LogMel

            self.mel = LogMel(recipe["profile"])
            self.register_buffer("mean", torch.zeros(self.mel.profile.n_mels), persistent=True)
            self.register_buffer("std", torch.ones(self.mel.profile.n_mels), persistent=True)
        self.encoder = models.ChoiCNN()
        self.multi_level = bool(recipe["multi_level"])
        dims = self.encoder.dims if self.multi_level else self.encoder.dims[-1:]
        self.heads = nn.ModuleList(nn.Linear(d, recipe["dim"]) for d in dims)
        self.temperature = recipe["temperature"]

    def _levels(self, mel: torch.Tensor) -> list[torch.Tensor]:
        features = self.encoder.levels(mel)
        features = features if self.multi_level else features[-1:]
        return [head(f) for head, f in zip(self.heads, features, strict=True)]

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        if self.self_augmented and mel.dim() == 2:  # waveform windows
            mel = self._features(mel)
        return torch.cat(self._levels(mel), dim=1)

    def set_statistics(self, mean, std) -> None:
        """The published per-band statistics that standardise the device-side mel."""
        if not self.self_augmented:
            return
        self.mean.copy_(torch.as_tensor(mean))
        self.std.copy_(torch.as_tensor(std))

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        return (self.mel(wave) - self.mean) / self.std

    def forward(self, views: list[torch.Tensor], g: torch.Generator) -> torch.Tensor:
        if self.self_augmented:
            sr = self.mel.profile.sample_rate
            views = [self._features(augment.choi_chain(views[0].clone(), sr, g)),
                     self._features(augment.choi_chain(views[0].clone(), sr, g))]  # fmt: skip
        pairs = zip(self._levels(views[0]), self._levels(views[1]), strict=True)
        return losses.total(losses.info_nce(a, b, self.temperature) for a, b in pairs)


class ChoiCPC(nn.Module):
    """Choi et al.'s MelCPC: a 12 s window (752 frames) split into consecutive 188-frame
    segments, each encoded by the 5-layer CNN; a 1-layer GRU summarises segments up to t and a
    linear map per step k predicts segment t + k, scored by InfoNCE against the other tracks'
    segments of the batch. Embedding: the GRU's last state (256-d)."""

    def __init__(self, recipe: dict):
        super().__init__()
        self.segment = recipe["segment"]
        self.steps = recipe["predict_steps"]
        self.encoder = models.ChoiCNN()
        self.project = nn.Linear(self.encoder.dim, recipe["dim"])
        self.gru = nn.GRU(recipe["dim"], recipe["context"], batch_first=True)
        self.predictors = nn.ModuleList(
            nn.Linear(recipe["context"], recipe["dim"]) for _ in range(self.steps)
        )
        self.temperature = recipe["temperature"]

    def _segments(self, mel: torch.Tensor) -> torch.Tensor:
        n, frames, bands = mel.shape
        count = frames // self.segment
        chunks = mel[:, : count * self.segment].reshape(n * count, self.segment, bands)
        return self.project(self.encoder(chunks)).reshape(n, count, -1)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        context, _ = self.gru(self._segments(mel))
        return context[:, -1]

    def contexts(self, segments: list[torch.Tensor]) -> torch.Tensor:
        """The GRU's output at every step of one whole track: ``segments`` are batches of its
        consecutive ``[n, segment, bands]`` segments, in order → ``[segments, context]``
        (Choi et al.'s MelCPC track summary)."""
        z = torch.cat([self.project(self.encoder(chunk)) for chunk in segments])
        context, _ = self.gru(z[None])
        return context[0]

    def forward(self, views: list[torch.Tensor], g: torch.Generator) -> torch.Tensor:
        z = self._segments(views[0])
        context, _ = self.gru(z)
        terms = []
        for k, predictor in enumerate(self.predictors, start=1):
            for t in range(z.shape[1] - k):
                terms.append(
                    losses.info_nce(predictor(context[:, t]), z[:, t + k], self.temperature)
                )
        return losses.total(terms) / len(terms)


class Ferraro(nn.Module):
    """Ferraro et al.: audio, genre and CF encoders; symmetric NT-Xent for every pair of the
    recipe's modalities (audio↔genre, audio↔CF, genre↔CF), weights 1."""

    def __init__(self, recipe: dict, dims: dict[str, int]):
        super().__init__()
        dim = recipe["dim"]
        self.modalities = [v["name"] if isinstance(v, dict) else v.name for v in recipe["views"]]
        expected = recipe["genre_vector_size"]
        if "genre" in self.modalities and expected and dims.get("genre") != expected:
            raise DuetError(
                f"recipe {recipe.get('name', 'ferraro')} expects {expected}-d genre vectors "
                f"(Ferraro et al.), the genre table has {dims.get('genre')}-d (re-run duet "
                f"embeddings genre-w2v --vector-size {expected}, or --set "
                f"genre_vector_size={dims.get('genre')} to train on these)"
            )
        encoders = {"audio": models.FerraroAudio(dim), "genre": models.GenreEncoder(dims.get("genre", 1), dim),
                    "cf": models.CFEncoder(dims.get("cf", 1), dim)}  # fmt: skip
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.temperature = recipe["temperature"]

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        return self.encoders["audio"](mel)

    def forward(self, views: list[torch.Tensor], g: torch.Generator) -> torch.Tensor:
        z = [self.encoders[m](v) for m, v in zip(self.modalities, views, strict=True)]
        pairs = [(i, j) for i in range(len(z)) for j in range(i + 1, len(z))]
        return losses.total(losses.nt_xent(z[i], z[j], self.temperature) for i, j in pairs)


def frame_masks(scores: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PEMR's masks from frame scores ``[batch, frames]``: the positive view hides the lowest
    ``ratio`` of frames (the inessential ones), the negative view hides all the others."""
    frames = scores.shape[1]
    count = max(1, round(ratio * frames))
    lowest = scores.topk(count, dim=1, largest=False).indices
    positive = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, lowest, True)
    return positive, ~positive


class PEMR(nn.Module):
    """PEMR (Yao et al.): two augmented waveform crops (CLMR's chain without pitch shift) →
    log-mel on the device → a frame Transformer trained by masked-frame reconstruction, whose
    [CLS] attention builds a positive (least important 10 % of frames hidden) and a negative
    (only those kept) of the second view; FCN-4 → 512 → projector 256; loss = reconstruction
    + Barlow Twins(view 1, positive) + λ · Σ diag(C(view 1, negative))²."""

    def __init__(self, recipe: dict):
        super().__init__()
        from duet.pipelines.audio.mel import MelProfile
        from duet.training.features import LogMel

        self.mel = LogMel(MelProfile(name="pemr", **recipe["mel"]))
        t = recipe["transformer"]
        self.transformer = models.FrameTransformer(self.mel.profile.n_mels, t["dim"], t["layers"],
                                                   t["heads"])  # fmt: skip
        self.encoder = models.FCN4()
        hidden, out = recipe["projector"]["hidden"], recipe["projector"]["out"]
        self.projector = models.projector(self.encoder.dim, hidden, out)
        self.mask_ratio = recipe["mask_ratio"]
        self.reconstruction_ratio = recipe["reconstruction_mask"]
        self.off_diagonal = recipe["off_diagonal_weight"]
        self.negative_weight = recipe["negative_weight"]

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[batch, frames, bands]`` standardised per example."""
        mel = self.mel(wave)
        mean = mel.mean(dim=(1, 2), keepdim=True)
        return (mel - mean) / mel.std(dim=(1, 2), keepdim=True).clamp_min(1e-5)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        return self.encoder(self._features(wave))

    def reconstruction(self, mel: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Smooth-L1 between masked frames and their reconstruction (BERT-style masking)."""
        masked = (
            torch.rand(mel.shape[:2], generator=g, device=mel.device) < self.reconstruction_ratio
        )
        masked[:, 0] |= ~masked.any(dim=1)  # at least one frame per example
        predicted = self.transformer.reconstruct(mel, masked)
        return F.smooth_l1_loss(predicted[masked].float(), mel[masked].float())

    def forward(self, views: list[torch.Tensor], g: torch.Generator) -> torch.Tensor:
        sr = self.mel.profile.sample_rate
        mels = [self._features(augment.clmr_chain(v.clone(), sr, g, pitch=False)) for v in views]
        loss = sum(self.reconstruction(m, g) for m in mels) / len(mels)
        with torch.no_grad():
            positive, negative = frame_masks(self.transformer.scores(mels[1]).float(),
                                             self.mask_ratio)  # fmt: skip
        z1 = self.projector(self.encoder(mels[0]))
        zp = self.projector(self.encoder(mels[1].masked_fill(positive[..., None], 0.0)))
        zn = self.projector(self.encoder(mels[1].masked_fill(negative[..., None], 0.0)))
        return (loss + losses.barlow_twins(z1, zp, self.off_diagonal)
                + self.negative_weight * losses.decorrelation(z1, zn))  # fmt: skip


System = Contrastive | Choi | ChoiCPC | Ferraro | PEMR
"""Every system: a module whose forward is the training loss of a batch of views, with an
``embed`` for downstream use."""


def build(recipe: dict, dims: dict[str, int] | None = None) -> System:
    """The system a recipe names; ``dims`` are the sizes of its embedding views."""
    dims = dims or {}
    kind = recipe["system"]
    if kind == "choi":
        return Choi(recipe)
    if kind == "choi-cpc":
        return ChoiCPC(recipe)
    if kind == "ferraro":
        return Ferraro(recipe, dims)
    if kind == "pemr":
        return PEMR(recipe)
    return Contrastive(recipe, dims.get("vector"))
