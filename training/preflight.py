"""What ``duet train`` checks before its first step: that ``--out`` is free (or the user said
``--resume`` / ``--overwrite``), and that every epoch to train has a pair run with rows of the
recipe's strategy, enough for at least one step. Each problem is one :class:`DuetError` line
with the numbers and the command that fixes it."""

from __future__ import annotations

from dataclasses import dataclass

from duet.errors import DuetError
from duet.training import data


class OutputInUse(DuetError):
    """``--out`` holds a run and neither ``--resume`` nor ``--overwrite`` was given."""


class NoPairs(DuetError):
    """No complete pair run has rows of the recipe's strategy for an epoch to train."""


class NoSteps(DuetError):
    """An epoch would take no optimizer step (too few pairs for the batch size and ranks)."""


@dataclass(frozen=True)
class EpochPlan:
    epoch: int
    run: str
    rows: int
    batches: int


def check_out(out: str, *, holds: str | None, resume: bool, overwrite: bool) -> None:
    """Refuse to train into ``out`` when it holds a run (``holds`` describes it) unless
    ``resume`` or ``overwrite``; refuse ``resume`` when it holds none."""
    if resume and overwrite:
        raise DuetError("--resume and --overwrite contradict each other (choose one)")
    if resume and holds is None:
        raise DuetError(f"--resume: {out} holds no checkpoint (train without --resume to start)")
    if holds is not None and not (resume or overwrite):
        raise OutputInUse(f"{out} already holds a run ({holds}); pass --resume to continue it "
                          "or --overwrite to replace it")  # fmt: skip


def pairs_command(data_uri: str, strategy: str, first: int, last: int) -> str:
    """The ``duet pairs`` command that makes the epochs a training run needs."""
    return f"duet pairs --data {data_uri} --strategies {strategy} --epochs {first}:{last}"


def plan_epochs(root: data.Root, recipe: dict, first: int, last: int, batch_size: int,
                world: int, partial: bool, *, current: tuple[int, str] | None = None,
                data_uri: str) -> list[EpochPlan]:  # fmt: skip
    """The pair run, rows and batches per rank of every epoch in ``[first, last)``, or the
    error that stops the run before its first step. ``current`` (epoch, run) is the run a
    resumed epoch already reads."""
    strategy = recipe["strategy"]
    plans = []
    for epoch in range(first, last):
        run = current[1] if current and current[0] == epoch else root.run_for(strategy, epoch)
        if run is None:
            have = [r for r, body in root.pair_runs() if strategy in (body.get("strategies") or [])]
            where = (f"the runs with {strategy} ({', '.join(have[:3])}) lack epoch {epoch}" if have
                     else f"no complete pair run of {root.root} has {strategy}")  # fmt: skip
            raise NoPairs(f"recipe {recipe['name']} reads {strategy} pairs of epochs {first}:{last}"
                          f", but {where} (run: {pairs_command(data_uri, strategy, first, last)})")  # fmt: skip
        body = dict(root.pair_runs()).get(run, {})
        rows = root.epoch_rows(run, body, strategy, epoch)
        batches = data.plan(rows, batch_size, 0, world, partial)
        per_rank = rows // world
        if batches == 0 or per_rank < 2:
            hint = ("lower --batch-size" if per_rank >= 2 else "make more pairs (a larger "
                    "catalogue) or train on fewer ranks")  # fmt: skip
            if per_rank >= 2 and not partial:
                hint += " or pass --partial-batch (small catalogues)"
            raise NoSteps(f"epoch {epoch} would take no step: {rows} {strategy} pairs in run "
                          f"{run}, batch size {batch_size}, {world} rank(s) ({per_rank} pairs per "
                          f"rank; a step needs a batch of at least 2); {hint}")  # fmt: skip
        plans.append(EpochPlan(epoch, run, rows, batches))
    return plans
