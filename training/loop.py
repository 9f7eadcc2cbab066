"""``duet train``: a recipe (YAML preset), the data layer and a plain PyTorch loop.

Runs on CPU (tests, demo) or GPU with bf16 autocast, and under ``torchrun`` with DDP (each
rank reads its own rows; see ``training.data``). Checkpoints hold the model, optimiser,
scheduler, epoch, step, pair run and data position; ``--resume`` continues at the exact step
with the same remaining samples and the same augmentation draws.

Ranks stay in step: at every step the ranks agree (one all-reduce) whether each of them has a
batch to learn from — a rank whose rows were all skipped makes every rank skip that step — and
whether a stop was requested (SIGINT/SIGTERM, checkpointed first). A non-finite loss on any
rank stops every rank before the weights change. Augmentations and dropout draw from
(seed, epoch, step, rank), so ranks see different draws and a resumed run the same ones.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TypedDict

import torch

from duet.errors import DuetError
from duet.hashing import derive_seed
from duet.training import checkpoint, data, preflight, runfiles, systems
from duet.training.recipe import load_recipe
from duet.training.store import Store


class Interrupted(DuetError):
    """SIGINT or SIGTERM stopped training after a checkpoint; the CLI exits 130."""

    exit_status = 130


class NonFiniteLoss(DuetError):
    """A step's loss is NaN or infinite: training stops before the weights change."""


class EmptyEpoch(DuetError):
    """Every row of an epoch was skipped (missing, corrupt or unreadable members)."""


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


@dataclass
class TrainConfig:
    recipe: str
    data: str
    out: str
    epochs: int | tuple[int, int] | None = None  # N (epochs 0..N-1) or (A, B): epochs A..B-1
    batch_size: int | None = None
    seed: int = 0
    resume: bool = False
    overwrite: bool = False
    workers: int = 2
    max_steps: int | None = None  # a global step limit, across --resume
    device: str | None = None
    endpoint_url: str | None = None
    checkpoint_every: int = 500
    progress: bool = True
    shard_cache: str | None = None
    shard_cache_bytes: int = 100 << 30
    verify: bool = True  # check every crop's bytes against the index's block digests
    partial_batch: bool = False  # a last, smaller batch per epoch instead of dropping the tail


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


def _total(values: list[float], world: int, device: torch.device) -> list[float]:
    """The sum of each value over all ranks (one all-reduce; the values themselves on one
    rank). A flag summed is "some rank raised it"."""
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.tolist()


class _Stop:
    """SIGINT/SIGTERM ask the loop to checkpoint and stop at the next step boundary."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def epoch_range(epochs: int | tuple[int, int] | None, recipe: dict) -> tuple[int, int]:
    if epochs is None:
        return 0, int(recipe["epochs"])
    if isinstance(epochs, int):
        return 0, epochs
    return int(epochs[0]), int(epochs[1])


def _holds(out: str, endpoint: str | None) -> str | None:
    """What run ``out`` holds, in words, or None."""
    blob = runfiles.read(runfiles.at(out, runfiles.CHECKPOINT), endpoint)
    if blob is not None:
        try:
            state = checkpoint.loads(blob, out)["state"]
            return f"a checkpoint at epoch {state['epoch']}, global step {state['global_step']}"
        except checkpoint.CheckpointError:
            return "an unreadable checkpoint.pt"
    if runfiles.exists(runfiles.at(out, runfiles.METRICS), endpoint):
        return "a metrics.jsonl"
    return None


class TrainSummary(TypedDict, total=False):
    """What :func:`train` returns: the last step's metrics record (``loss``, ``samples_per_s``,
    ``data_wait``, ...), the loop ``state``, rows skipped by reason, and why it stopped early,
    if it did."""

    epoch: int
    step: int
    global_step: int
    loss: float | None
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
    skipped_rows: dict[str, int]


def train(cfg: TrainConfig, overrides: dict | None = None) -> TrainSummary:
    """Train ``cfg.recipe`` on ``cfg.data``; returns the final state summary.

    Raises (one line each): :class:`preflight.OutputInUse`, :class:`preflight.NoPairs`,
    :class:`preflight.NoSteps` before the first step; :class:`NonFiniteLoss`,
    :class:`EmptyEpoch` and :class:`Interrupted` (after a checkpoint) during training."""
    recipe = load_recipe(cfg.recipe, overrides)
    first, last = epoch_range(cfg.epochs, recipe)
    batch_size = cfg.batch_size or recipe["batch_size"]
    rank, world = _distributed()
    try:
        with _Stop() as stop:
            return _train(cfg, recipe, first, last, batch_size, rank, world, stop)
    finally:
        if world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _train(cfg: TrainConfig, recipe: dict, first: int, last: int, batch_size: int, rank: int,
           world: int, stop: _Stop) -> TrainSummary:  # fmt: skip
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    sync_device = device if device.type == "cuda" else torch.device("cpu")
    preflight.check_out(cfg.out, holds=_holds(cfg.out, cfg.endpoint_url), resume=cfg.resume,
                        overwrite=cfg.overwrite)  # fmt: skip
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
    state: dict[str, Any] = {"epoch": first, "step": 0, "global_step": 0, "run": None,
                             "run_epoch": None}  # fmt: skip
    checkpoint_uri = runfiles.at(cfg.out, runfiles.CHECKPOINT)
    if cfg.resume:
        blob = runfiles.read(checkpoint_uri, cfg.endpoint_url)
        if blob is None:
            raise DuetError(f"--resume: no checkpoint at {checkpoint_uri} (train without --resume)")
        saved = checkpoint.loads(blob, checkpoint_uri, map_location=device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
    current = (state["run_epoch"], state["run"]) if state["run"] else None
    plans = preflight.plan_epochs(root, recipe, state["epoch"], last, batch_size, world,
                                  cfg.partial_batch, current=current, data_uri=cfg.data)  # fmt: skip
    wrapped = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    metrics_uri = runfiles.at(cfg.out, runfiles.METRICS)
    board = _tensorboard(cfg.out) if rank == 0 else None
    lines = (
        (runfiles.read(metrics_uri, cfg.endpoint_url) or b"").decode().splitlines()
        if cfg.resume
        else []
    )
    summary: TrainSummary = {}
    skipped_rows: dict[str, int] = {}

    def save() -> None:
        if rank != 0:
            return
        blob = checkpoint.dumps({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "state": state, "dims": dims, "stats": {  # for training.hear
                                     p: {"mean": torch.from_numpy(b.mean), "std": torch.from_numpy(b.std)}
                                     for p, b in band_stats.items()},
                                 "recipe": {**recipe, "views": [v.__dict__ for v in recipe["views"]]}})  # fmt: skip
        runfiles.write(checkpoint_uri, blob, cfg.endpoint_url)
        runfiles.write(metrics_uri, ("\n".join(lines) + "\n").encode(), cfg.endpoint_url)

    def finish(stopped: str | None = None) -> TrainSummary:
        out: TrainSummary = {**summary, "state": dict(state), "skipped_rows": dict(skipped_rows),
                             "params": sum(p.numel() for p in model.parameters())}  # fmt: skip
        if stopped:
            out["stopped"] = stopped
        return out

    if cfg.max_steps is not None and state["global_step"] >= cfg.max_steps:
        return finish("max_steps")
    if rank == 0:
        print(f"{recipe['name']}: epochs {state['epoch']}:{last}, {plans[0].batches} steps per "
              f"epoch (batch {batch_size}, {world} rank(s)), pairs {plans[0].run}",
              file=sys.stderr, flush=True)  # fmt: skip
    while state["epoch"] < last:
        epoch = state["epoch"]
        if state["run_epoch"] != epoch:  # a new epoch takes the newest complete pair run
            run = root.run_for(recipe["strategy"], epoch)
            if run is None:
                raise preflight.NoPairs(f"no complete pair run has {recipe['strategy']} epoch "
                                        f"{epoch} any more (run: "
                                        f"{preflight.pairs_command(cfg.data, recipe['strategy'], epoch, last)})")  # fmt: skip
            state["run"], state["run_epoch"] = run, epoch
        batches = data.EpochBatches(root, state["run"], recipe["strategy"], epoch, recipe["views"],
                                    batch_size, cfg.seed, rank, world, start_batch=state["step"],
                                    verify=cfg.verify, partial=cfg.partial_batch)  # fmt: skip
        total_steps = state.setdefault("total_steps", run_steps(batches.batches, last - first))
        loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=cfg.workers,
                                             prefetch_factor=4 if cfg.workers else None)  # fmt: skip
        bar = None
        if cfg.progress and rank == 0:
            from tqdm import tqdm

            bar = tqdm(total=len(batches), desc=f"{recipe['name']} epoch {epoch}", leave=False)
        wait = busy = 0.0
        samples = epoch_samples = epoch_skipped = 0
        it = iter(loader)
        while True:
            t0 = time.monotonic()
            try:
                batch = next(it)
            except StopIteration:
                break
            except Exception:
                if stop.signal is None:  # workers that died of the same signal: stop below
                    raise
                batch = {"ids": [], "skipped": 0, "reasons": {}, "empty": True}
            t1 = time.monotonic()
            wait += t1 - t0
            step = state["step"]
            counts = [batch["reasons"].get(r, 0) for r in data.SKIP_REASONS]
            cannot, stopping, *skips = _total([float(bool(batch.get("empty")) or len(batch["ids"]) < 2),
                                               float(stop.signal is not None), *counts], world, sync_device)  # fmt: skip
            for reason, n in zip(data.SKIP_REASONS, skips, strict=True):  # every rank's rows
                if n:
                    skipped_rows[reason] = skipped_rows.get(reason, 0) + int(n)
            skipped = int(sum(skips))
            epoch_skipped += skipped
            if stopping:
                save()
                name = (
                    signal.Signals(stop.signal).name if stop.signal else "a signal on another rank"
                )
                raise Interrupted(f"interrupted by {name} at global step {state['global_step']} "
                                  f"(checkpoint saved in {cfg.out}); re-run the same command "
                                  "with --resume to resume")  # fmt: skip
            lr = lr_at(state["global_step"], recipe, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if cannot:  # some rank has fewer than 2 rows: every rank skips this step
                lines.append(json.dumps({"epoch": epoch, "step": step,
                                         "global_step": state["global_step"], "loss": None,
                                         "lr": lr, "batch": len(batch["ids"]),
                                         "skipped": skipped}))  # fmt: skip
                state["step"] += 1
                state["global_step"] += 1
                continue
            g = torch.Generator(device=device).manual_seed(
                derive_seed(cfg.seed, epoch, step, rank, "augment") % 2**63
            )
            views = [batch[v.name].to(device, non_blocking=True) for v in recipe["views"]]
            torch.manual_seed(derive_seed(cfg.seed, epoch, step, rank, "dropout") % 2**63)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = wrapped(views, g)
            loss_value = float(loss.detach())  # waits for the device, so busy time is real
            (bad,) = _total([float(not math.isfinite(loss_value))], world, sync_device)
            if bad:
                ids = batch["ids"] if not math.isfinite(loss_value) else "(on another rank)"
                raise NonFiniteLoss(f"non-finite loss ({loss_value}) at epoch {epoch} step {step} "
                                    f"(global step {state['global_step']}); batch track ids: "
                                    f"{ids}; the last checkpoint in {cfg.out} is unchanged")  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            t2 = time.monotonic()
            busy += t2 - t1
            samples += len(batch["ids"])
            epoch_samples += len(batch["ids"])
            state["step"] += 1
            state["global_step"] += 1
            record: TrainSummary = {"epoch": epoch, "step": step, "global_step": state["global_step"],
                      "loss": round(loss_value, 6), "lr": lr, "batch": len(batch["ids"]),
                      "skipped": skipped, "samples_per_s": round(samples / max(wait + busy, 1e-9), 2),
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
            if cfg.max_steps is not None and state["global_step"] >= cfg.max_steps:
                save()
                return finish("max_steps")
        if bar is not None:
            bar.close()
        (taken,) = _total([float(epoch_samples)], world, sync_device)
        if taken == 0 and epoch_skipped > 0:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(skipped_rows.items()))
            raise EmptyEpoch(f"every row of epoch {epoch} was skipped ({epoch_skipped} rows: "
                             f"{reasons}); the warnings above name them (check the shards with "
                             f"duet report)")  # fmt: skip
        state["epoch"] += 1
        state["step"] = 0
        save()
    return finish()
