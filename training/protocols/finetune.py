"""Alonso-Jiménez et al.'s downstream protocol (ICASSP 2023, downstream evaluation): the
pre-trained backbone fine-tuned with an MLP head on a tagging dataset.

- head: one hidden layer as wide as the embedding, ReLU, one output per tag;
- loss: binary cross-entropy per tag with L2 regularisation 1e-5 (Adam's weight decay);
- learning rate: cyclical, triangular between 1e-5 and 1e-4;
- at most 50 epochs, stopped after 10 epochs without a higher validation average precision;
- an epoch: one patch (the recipe's window) cropped at random from each training track;
- validation on the 30 s at the centre of each track, test on the whole track, both by
  averaging the predictions of non-overlapping patches; macro ROC-AUC and PR-AUC, mean ± std
  over 3 runs.

duet's own choices: the half-cycle of the learning rate is one epoch of steps; batch 32;
each run starts from the checkpoint's weights with a head seeded by the run.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from duet.errors import DuetError
from duet.training import checkpoint, data, systems
from duet.training.protocols.classification import tag_and_clip_auc


class Tagger(nn.Module):
    """The system's embedding followed by the MLP head (hidden size = embedding size)."""

    def __init__(self, system: systems.System, dim: int, tags: int):
        super().__init__()
        self.system = system
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, tags))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.head(self.system.embed(windows))


def _windows(root: data.Root, view: data.View, track: str, start: int, count: int,
             stats) -> np.ndarray:  # fmt: skip
    stream = str(view.stream)  # a stream view: the caller picked it
    whole = root.read_window(stream, track, start, count * view.length)
    member = root.members[stream][track]
    shape = (count, view.length, -1) if member.width > 1 else (count, view.length)
    windows = whole.reshape(shape).astype(np.float32)
    return (windows - stats.mean) / stats.std if stats is not None else windows


def _predict(model: Tagger, root, view, tracks, stats, centre_frames: int | None,
             device) -> np.ndarray:  # fmt: skip
    """Per track, the mean sigmoid over its non-overlapping patches (of the centre
    ``centre_frames`` only, when given)."""
    out = []
    model.eval()
    with torch.no_grad():
        for track in tracks:
            length = root.members[view.stream][track].length
            span = min(length, centre_frames) if centre_frames else length
            count = max(span // view.length, 1)
            start = max((length - count * view.length) // 2, 0)
            x = torch.from_numpy(_windows(root, view, track, start, count, stats)).to(device)
            out.append(torch.sigmoid(model(x)).mean(0).cpu().numpy())
    return np.stack(out)


def _frames_per_second(view: data.View) -> float:
    """Windows are cut in frames of the mel profile, or in samples of the waveform stream."""
    if view.stream and view.stream.startswith("wav-"):
        return float(view.stream.removeprefix("wav-"))
    from duet.pipelines.audio.mel import presets

    profile = presets().get(view.profile or "")
    if profile is None:
        raise DuetError(f"{view.stream}: unknown frame rate (profile {view.profile})")
    return profile.sample_rate / profile.hop_length


def finetune(checkpoint_uri: str, data_uri: str, truth: dict[str, np.ndarray],
             splits: dict[str, str], *, runs: int = 3, max_epochs: int = 50, patience: int = 10,
             lr_range: tuple[float, float] = (1e-5, 1e-4), weight_decay: float = 1e-5,
             batch_size: int = 32, centre_seconds: float = 30.0, device: str | None = None) -> dict:  # fmt: skip
    """Fine-tune ``checkpoint_uri``'s backbone on ``truth`` (track id → 0/1 tag vector) with the
    train / val / test ``splits``, reading audio from the dataset root ``data_uri``. Returns
    the test ``roc_auc`` / ``pr_auc`` (tag-wise macro) with their std over ``runs``, the
    epochs each run trained, and the split sizes."""
    from duet.training import runfiles
    from duet.training.store import Store

    blob = runfiles.read(checkpoint_uri, None)
    if blob is None:
        raise checkpoint.CheckpointError(f"{checkpoint_uri}: no such checkpoint")
    saved = checkpoint.loads(blob, checkpoint_uri)
    recipe = {**saved["recipe"], "views": tuple(data.View(**v) for v in saved["recipe"]["views"])}
    view = next(v for v in recipe["views"] if v.stream)
    root = data.Root(Store(data_uri))
    stats = root.stats(view.profile) if view.profile else None
    members = root.members.get(view.stream, {})
    usable = {t for t in truth if t in members and members[t].length >= view.length}
    parts = {s: sorted(t for t in usable if splits.get(t) == s) for s in ("train", "val", "test")}
    if empty := [s for s, tracks in parts.items() if not tracks]:
        raise DuetError(f"alonso-finetune needs tracks with audio and labels in every split; "
                        f"{', '.join(empty)} has none")  # fmt: skip
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    centre = int(centre_seconds * _frames_per_second(view)) if centre_seconds else None
    y = {s: np.stack([truth[t] for t in parts[s]]).astype(np.float32) for s in parts}
    results = []
    for run in range(runs):
        system = systems.build(recipe, saved["dims"])
        system.load_state_dict(saved["model"])
        with torch.no_grad():
            probe = torch.from_numpy(_windows(root, view, parts["train"][0], 0, 1, stats))
            dim = system.embed(probe).shape[1]
        torch.manual_seed(run)
        model = Tagger(system, dim, y["train"].shape[1]).to(dev)
        optimiser = torch.optim.Adam(model.parameters(), lr=lr_range[0], weight_decay=weight_decay)
        steps = max(len(parts["train"]) // batch_size, 1)
        schedule = torch.optim.lr_scheduler.CyclicLR(
            optimiser, base_lr=lr_range[0], max_lr=lr_range[1], step_size_up=steps,
            mode="triangular", cycle_momentum=False)  # fmt: skip
        rng = np.random.default_rng(run)
        best, best_state, waited, epochs = -1.0, copy.deepcopy(model.state_dict()), 0, 0
        for epoch in range(max_epochs):
            epochs = epoch + 1
            model.train()
            order = rng.permutation(len(parts["train"]))
            for i in range(0, max(len(order) - batch_size, 0) + 1, batch_size):
                rows = order[i : i + batch_size]
                x = np.concatenate([_windows(root, view, parts["train"][r], int(rng.integers(
                    0, members[parts["train"][r]].length - view.length + 1)), 1, stats) for r in rows])  # fmt: skip
                loss = nn.functional.binary_cross_entropy_with_logits(
                    model(torch.from_numpy(x).to(dev)), torch.from_numpy(y["train"][rows]).to(dev)
                )
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
            val = _predict(model, root, view, parts["val"], stats, centre, dev)
            score = tag_and_clip_auc(y["val"], val)["tag_pr_auc"]
            if score > best:
                best, best_state, waited = score, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
                if waited >= patience:
                    break
        model.load_state_dict(best_state)
        test = _predict(model, root, view, parts["test"], stats, None, dev)
        results.append({**tag_and_clip_auc(y["test"], test), "epochs": epochs})
    report: dict = {}
    for key, name in (("tag_roc_auc", "roc_auc"), ("tag_pr_auc", "pr_auc")):
        values = [r[key] for r in results]
        report[name], report[f"{name}_std"] = float(np.mean(values)), float(np.std(values))
    report.update(runs=runs, epochs=[r["epochs"] for r in results], tags=results[0]["tags_scored"],
                  **{s: len(t) for s, t in parts.items()})  # fmt: skip
    return report
