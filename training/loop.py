"""``duet train``: a recipe (YAML preset), the data layer and a plain PyTorch loop.

Runs on CPU (tests, demo) or GPU with bf16 autocast, and under ``torchrun`` with DDP (each
rank reads its own rows; see ``training.data``). Checkpoints hold the model, optimiser,
scheduler, epoch, step, pair run and data position; ``--resume`` continues at the exact step
with the same remaining samples and the same augmentation draws.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, TypedDict

import fsspec
import torch

from duet import progress
from duet.errors import DuetError
from duet.hashing import derive_seed
from duet.training import checkpoint, data, systems
from duet.training import summary as summaries
from duet.training.recipe import load_recipe
from duet.training.store import Store


def require_streams(root: data.Root, recipe: dict) -> None:
    """Every stream the recipe reads is in the root's index, or a one-line error that names
    the streams the root has and how to choose one."""
    for view in recipe["views"]:
        if view.stream and view.stream not in root.streams:
            mels = [s for s in root.streams if s.startswith("mel-")]
            hint = (f"; choose one with --set mel_profile={mels[0].removeprefix('mel-')}"
                    if view.stream.startswith("mel-") and mels else "")  # fmt: skip
            raise DuetError(f"recipe {recipe['name']} reads stream {view.stream}, which "
                            f"{root.root} does not have (it has {', '.join(root.streams)}){hint}")  # fmt: skip


def view_dims(root: data.Root, recipe: dict) -> dict[str, int]:
    """Sizes of the recipe's embedding views: ``vector`` (W2V), ``cf``, ``genre``."""
    dims = {}
    for view in recipe["views"]:
        if view.table:
            size = len(next(iter(root.vectors(view.table).values())))
            dims["cf" if view.name == "cf" else "vector"] = size
        if view.genres:
            dims["genre"] = next(iter(root.genres(view.genres).values())).shape[1]
    return dims


def run_steps(batches_per_epoch: int, epochs: int) -> int:
    """The length of a run in optimiser steps, the horizon of :func:`lr_at`'s cosine: the first
    epoch's batches (the strategy's pairs per epoch ÷ batch size, per rank) × ``epochs``.

    Alonso-Jiménez et al. (ICASSP 2023, experimental setup: training) decay the learning rate over
    their 50-epoch runs, so a strategy with fewer pairs per epoch (Playlist CO, TCO) has a
    shorter run and a faster decay than SimCLR's one pair per track. Fixed when a run starts
    (and kept in its checkpoint): later epochs of CO/TCO differ by a few pairs, and a horizon
    that moved with them would make the curve jump at epoch boundaries."""
    return max(batches_per_epoch, 1) * epochs


def lr_at(step: int, recipe: dict, total: int) -> float:
    """Linear warm-up 0 → ``lr`` over ``warmup_steps``, then cosine decay to 0 at ``total``
    (:func:`run_steps`); steps past ``total`` stay at 0.

    Alonso-Jiménez et al. (ICASSP 2023, experimental setup: training): warm-up from 0 to 1e-4
    over the first 5,000 steps, then cosine decay to the end of training (``lr``, ``warmup_steps`` in the alonso-*
    recipes)."""
    warmup = recipe["warmup_steps"]
    if step < warmup:
        return recipe["lr"] * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return recipe["lr"] * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _options(uri: str, endpoint: str | None) -> dict:
    """fsspec options: an S3-compatible endpoint for ``s3://`` URIs."""
    return (
        {"client_kwargs": {"endpoint_url": endpoint}}
        if endpoint and uri.startswith("s3://")
        else {}
    )


def _write(uri: str, payload: bytes, endpoint: str | None) -> None:
    tmp = uri + ".tmp" if "://" not in uri else uri  # one PUT on object stores
    with fsspec.open(tmp, "wb", **_options(uri, endpoint)) as f:
        f.write(payload)
    if tmp != uri:
        os.replace(tmp, uri)


def _read(uri: str, endpoint: str | None) -> bytes | None:
    fs, path = fsspec.core.url_to_fs(uri, **_options(uri, endpoint))
    return fs.cat_file(path) if fs.exists(path) else None


@dataclass
class TrainConfig:
    recipe: str
    data: str
    out: str
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    resume: bool = False
    workers: int = 2
    max_steps: int | None = None
    device: str | None = None
    endpoint_url: str | None = None
    checkpoint_every: int = 500
    progress: bool = True
    shard_cache: str | None = None
    shard_cache_bytes: int = 100 << 30


def _tensorboard(out: str):
    """A TensorBoard writer beside the checkpoints when tensorboard is installed (local runs)."""
    if "://" in out:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(os.path.join(out, "tensorboard"))


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return rank, world


class TrainSummary(TypedDict, total=False):
    """What :func:`train` returns: the last step's metrics record (``loss``, ``samples_per_s``,
    ``data_wait``, ...), the loop ``state``, and why it stopped early, if it did."""

    epoch: int
    step: int
    global_step: int
    loss: float
    lr: float
    batch: int
    skipped: int
    samples_per_s: float
    data_wait: float
    step_s: float
    wait_s: float
    state: dict[str, Any]
    stopped: str
    params: int


def train(cfg: TrainConfig, overrides: dict | None = None) -> TrainSummary:
    """Train ``cfg.recipe`` on ``cfg.data``; returns the final state summary."""
    recipe = load_recipe(cfg.recipe, overrides)
    epochs = cfg.epochs or recipe["epochs"]
    batch_size = cfg.batch_size or recipe["batch_size"]
    rank, world = _distributed()
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    store = Store(cfg.data, endpoint_url=cfg.endpoint_url, shard_cache=cfg.shard_cache,
                  shard_cache_bytes=cfg.shard_cache_bytes)  # fmt: skip
    root = data.Root(store)
    require_streams(root, recipe)
    dims = view_dims(root, recipe)
    band_stats = {v.profile: root.stats(v.profile) for v in recipe["views"] if v.profile}

    torch.manual_seed(derive_seed(cfg.seed, "init") % 2**31)
    model = systems.build(recipe, dims)
    if isinstance(model, systems.Choi):  # its device-side mel is standardised like the shards'
        stats = root.stats(recipe["profile"])
        model.set_statistics(stats.mean, stats.std)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    state: dict[str, Any] = {
        "epoch": 0,
        "step": 0,
        "global_step": 0,
        "run": None,
        "run_epoch": None,
    }
    checkpoint_uri = f"{cfg.out.rstrip('/')}/checkpoint.pt"
    if cfg.resume:
        blob = _read(checkpoint_uri, cfg.endpoint_url)
        if blob is None:
            raise DuetError(f"--resume: no checkpoint at {checkpoint_uri} (train without --resume)")
        saved = checkpoint.loads(blob, checkpoint_uri, map_location=device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
    wrapped = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    metrics_uri = f"{cfg.out.rstrip('/')}/metrics.jsonl"
    board = _tensorboard(cfg.out) if rank == 0 else None
    lines = (
        (_read(metrics_uri, cfg.endpoint_url) or b"").decode().splitlines() if cfg.resume else []
    )
    steps_done_this_call = 0
    summary: TrainSummary = {}

    def save() -> None:
        if rank != 0:
            return
        blob = checkpoint.dumps({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "state": state, "dims": dims, "stats": {  # for training.hear
                                     p: {"mean": torch.from_numpy(b.mean), "std": torch.from_numpy(b.std)}
                                     for p, b in band_stats.items()},
                                 "recipe": {**recipe, "views": [v.__dict__ for v in recipe["views"]]}})  # fmt: skip
        _write(checkpoint_uri, blob, cfg.endpoint_url)
        _write(metrics_uri, ("\n".join(lines) + "\n").encode(), cfg.endpoint_url)

    while state["epoch"] < epochs:
        epoch = state["epoch"]
        if state["run_epoch"] != epoch:  # a new epoch takes the newest complete pair run
            state["run"], state["run_epoch"] = root.latest_run(), epoch
        batches = data.EpochBatches(root, state["run"], recipe["strategy"], epoch, recipe["views"],
                                    batch_size, cfg.seed, rank, world, start_batch=state["step"])  # fmt: skip
        total_steps = state.setdefault("total_steps", run_steps(batches.batches, epochs))
        loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=cfg.workers,
                                             prefetch_factor=4 if cfg.workers else None)  # fmt: skip
        bar = None
        if cfg.progress and rank == 0:
            from tqdm import tqdm

            bar = tqdm(total=len(batches), desc=f"{recipe['name']} epoch {epoch}", leave=False)
        wait = busy = 0.0
        samples = 0
        it = iter(loader)
        while True:
            t0 = time.monotonic()
            try:
                batch = next(it)
            except StopIteration:
                break
            t1 = time.monotonic()
            wait += t1 - t0
            step = state["step"]
            lr = lr_at(state["global_step"], recipe, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if batch.get("empty") or len(batch["ids"]) < 2:
                state["step"] += 1
                state["global_step"] += 1
                continue
            g = torch.Generator(device=device).manual_seed(
                derive_seed(cfg.seed, epoch, step, "augment") % 2**63
            )
            views = [batch[v.name].to(device, non_blocking=True) for v in recipe["views"]]
            torch.manual_seed(derive_seed(cfg.seed, epoch, step, "dropout") % 2**63)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = wrapped(views, g)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())  # waits for the device, so busy time is real
            t2 = time.monotonic()
            busy += t2 - t1
            samples += len(batch["ids"])
            state["step"] += 1
            state["global_step"] += 1
            steps_done_this_call += 1
            record: TrainSummary = {"epoch": epoch, "step": step, "global_step": state["global_step"],
                      "loss": round(loss_value, 6), "lr": lr, "batch": len(batch["ids"]),
                      "skipped": batch["skipped"], "samples_per_s": round(samples / max(wait + busy, 1e-9), 2),
                      "data_wait": round(wait / max(wait + busy, 1e-9), 4),
                      "step_s": round(t2 - t0, 5), "wait_s": round(t1 - t0, 5)}  # fmt: skip
            lines.append(json.dumps(record))
            summary = record
            if board is not None:
                for key in ("loss", "lr", "samples_per_s", "data_wait"):
                    board.add_scalar(key, record[key], state["global_step"])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.3f}", sps=f"{record['samples_per_s']:.0f}",
                                wait=f"{100 * record['data_wait']:.0f}%")  # fmt: skip
            if state["global_step"] % cfg.checkpoint_every == 0:
                save()
            if cfg.max_steps and steps_done_this_call >= cfg.max_steps:
                save()
                return {**summary, "stopped": "max_steps", "state": dict(state)}
        if bar is not None:
            bar.close()
        state["epoch"] += 1
        state["step"] = 0
        save()
    if world > 1:
        torch.distributed.destroy_process_group()
    return {**summary, "state": dict(state), "params": sum(p.numel() for p in model.parameters())}


def embed(checkpoint_uri: str, data_uri: str, output: str, endpoint_url: str | None = None,
          device: str | None = None, batch: int = 32, summary: str | None = None) -> int:  # fmt: skip
    """Track embeddings: the encoder's non-overlapping windows of each track summarised as
    ``summary`` (``training.summary``; default: the recipe's paper's), which the output's
    Parquet metadata records (``duet.summary``, ``duet.recipe``)."""
    import numpy as np
    import pyarrow as pa

    from duet import schemas

    blob = _read(checkpoint_uri, endpoint_url)
    if blob is None:
        raise checkpoint.CheckpointError(f"{checkpoint_uri}: no such checkpoint")
    saved = checkpoint.loads(blob, checkpoint_uri)
    recipe = {**saved["recipe"], "views": tuple(data.View(**v) for v in saved["recipe"]["views"])}
    model = systems.build(recipe, saved["dims"])
    model.load_state_dict(saved["model"])
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = model.to(dev).eval()
    view = next(v for v in recipe["views"] if v.stream)
    kind = summary or summaries.default_summary(recipe)
    length = summaries.window_length(recipe, view.length, kind)
    root = data.Root(Store(data_uri, endpoint_url=endpoint_url))
    ids, vectors = [], []
    stats = root.stats(view.profile) if view.profile else None
    with torch.no_grad():
        members = sorted(root.members.get(view.stream, {}).items())
        for track, member in progress.steps(members, desc="embed", unit="trk"):
            count = member.length // length
            if count == 0:
                continue
            whole = root.read_window(view.stream, track, 0, count * length)
            windows = (
                whole.reshape(count, length, -1)
                if member.width > 1
                else whole.reshape(count, length)
            )
            if stats is not None:
                windows = (windows - stats.mean) / stats.std
            ids.append(track)
            vectors.append(summaries.track_vector(model, windows, kind, dev, batch))
    if not ids:
        raise DuetError(f"no track of {data_uri} has one window of stream {view.stream} "
                        f"({len(members)} tracks in the stream; check --data)")  # fmt: skip
    matrix = np.stack(vectors).astype(np.float32)
    table = pa.table(
        {
            "track_id": ids,
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(matrix.reshape(-1)), matrix.shape[1]
            ),
        }
    )
    schema = schemas.embeddings_schema(matrix.shape[1]).with_metadata(
        {summaries.METADATA_KEY: kind.encode(), b"duet.recipe": str(recipe["name"]).encode()}
    )
    payload = schemas.to_parquet_bytes(table, schema)
    _write(output, payload, endpoint_url)
    return len(ids)
