"""One vector per track from its windows (``duet embed --summary``), as each paper summarises.

- ``mean`` — the mean of the encoder's embeddings of the track's non-overlapping windows:
  CLMR, Alonso-Jiménez et al. (test on the full track by averaging patches), Ferraro et al.
  (averaging non-overlapping frames) and PEMR.
- ``mean_std`` — per-dimension mean and standard deviation of the window embeddings,
  concatenated (``2 × dim``): Choi et al. (ICME 2022, downstream evaluation).
- ``cpc`` — Choi et al.'s MelCPC: the whole track as one sequence of segments through the
  GRU, and the mean and std of its outputs at every time step (``2 × context``).
"""

from __future__ import annotations

import numpy as np
import torch

from duet.errors import DuetError

SUMMARIES = ("mean", "mean_std", "cpc")
METADATA_KEY = b"duet.summary"


def default_summary(recipe: dict) -> str:
    """The summary a recipe's paper uses: ``cpc`` for MelCPC, ``mean_std`` for Choi et al.'s
    other systems, ``mean`` for every other system."""
    system = recipe.get("system", "contrastive")
    return {"choi-cpc": "cpc", "choi": "mean_std"}.get(system, "mean")


def window_length(recipe: dict, view_length: int, kind: str) -> int:
    """Frames (or samples) per window: the training view's length, or MelCPC's segment."""
    if kind not in SUMMARIES:
        raise DuetError(f"--summary {kind}: expected one of {', '.join(SUMMARIES)}")
    if kind == "cpc":
        if recipe.get("system") != "choi-cpc":
            raise DuetError(f"--summary cpc needs a MelCPC checkpoint (choi-cpc), not "
                            f"{recipe.get('name', recipe.get('system'))}")  # fmt: skip
        return int(recipe.get("segment", 188))
    return view_length


def mean_std(rows: torch.Tensor) -> torch.Tensor:
    """``[n, dim]`` → ``[2 × dim]``: the mean then the (population) std of each dimension."""
    return torch.cat([rows.mean(dim=0), rows.std(dim=0, correction=0)])


def track_vector(model: torch.nn.Module, windows: np.ndarray, kind: str, device: torch.device,
                 batch: int = 32) -> np.ndarray:  # fmt: skip
    """The track's vector (float32) from its ``windows`` ``[count, length(, bands)]``, already
    standardised as in training; ``model`` is in eval mode, called under ``no_grad``."""
    chunks = [torch.from_numpy(np.ascontiguousarray(windows[i : i + batch])).to(device)
              for i in range(0, len(windows), batch)]  # fmt: skip
    if kind == "cpc":
        rows = model.contexts(chunks)  # type: ignore[operator]
        return mean_std(rows).float().cpu().numpy()
    rows = torch.cat([model.embed(chunk) for chunk in chunks])  # type: ignore[operator]
    vector = rows.mean(dim=0) if kind == "mean" else mean_std(rows)
    return vector.float().cpu().numpy()
