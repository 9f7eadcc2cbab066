"""Pair manifests: one run (``LATEST`` or ``--run``) per strategy and epoch — rows, coverage,
unpaired and too-short tracks over epochs, how many pairs repeat from one epoch to the next,
and Playlist CO / TCO / Artist CO next to the figures of Alonso-Jiménez et al. (ICASSP 2023,
MPD: 826 368 / 731 520 / 1 014 528 pairs per epoch over 1 779 072 tracks)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

import duet.report.plots as plots
from duet import layout, publish, schemas
from duet.errors import DuetError
from duet.pipelines.pairs.common import PAIRED
from duet.pipelines.pairs.runs import latest_run, manifest, runs
from duet.report.common import Context, Missing, Section, Table
from duet.report.sample import read_all

PAPER = {"playlist_co": 826_368, "playlist_tco": 731_520, "artist_co": 1_014_528}
PAPER_TRACKS = 1_779_072
OVERLAP_EPOCHS = 4
"""Consecutive epoch pairs compared per strategy at most: the first two and the last two of
the run, so six manifests are read per strategy, not eight."""


class BadRunId(DuetError):
    """A run id that is not a plain folder name."""


class RunNotPublished(DuetError):
    """The pair run asked for with --run has no _SUCCESS."""


def check_run(run: str) -> str:
    """``run`` when it is LATEST or a run id (:func:`duet.layout.slug`, the one rule for names
    that become paths), else BadRunId."""
    if run == "LATEST":
        return run
    try:
        return layout.slug(run, "--run")
    except layout.InvalidName as exc:
        raise BadRunId(f"{exc}, or LATEST") from None


def selected_run(ctx: Context) -> str:
    """The run asked for, checked before any section runs: a run id that is not a plain folder
    name, or an explicit run that is not published, is the user's mistake (one line)."""
    run = check_run(ctx.run or "LATEST")
    if run != "LATEST" and ctx.marker(layout.pair_run(run)) is None:
        complete = ", ".join(name for name, _ in runs(ctx.root)) or "none"
        raise RunNotPublished(f"pair run {run} is not published under "
                              f"{ctx.at(layout.PAIRS)} (complete runs: {complete})")  # fmt: skip
    return run


def _resolve(ctx: Context, section: Section) -> str | None:
    if ctx.run not in (None, "LATEST"):
        return ctx.run
    try:
        return check_run(latest_run(ctx.root))
    except publish.NotPublished as exc:
        section.missing.append(Missing(layout.LATEST, str(exc), ctx.command("pairs")))
        return None


def gather(ctx: Context) -> Section:
    section = Section("pairs", "Pair manifests")
    run = _resolve(ctx, section)
    if run is None:
        return section
    body = ctx.require(section, layout.pair_run(run), f"pair run {run}", ctx.command("pairs"))
    if body is None:
        return section
    ctx.shared["run"] = run
    stats: dict[str, dict[str, dict]] = body["stats"]
    first, stop = body["epochs"]
    section.fact("run", "run", run)
    section.fact("strategies", "strategies", len(stats))
    section.fact("epochs", "epochs", f"{first}–{stop - 1}")
    section.fact("seed", "seed", body.get("seed"))
    section.fact("split", "split", ", ".join(body.get("split") or []) or "all tracks")
    section.fact("audio_filter", "tracks filtered by audio", "yes" if body.get("audio_filter")
                 else "no (no published audio index)")  # fmt: skip
    if body.get("published"):
        when = datetime.fromtimestamp(body["published"], UTC).strftime("%Y-%m-%d %H:%M UTC")
        section.fact("published", "published", when)
    overlap = _overlap(ctx, section, run, body, stats)
    _over_epochs(section, stats)
    _per_strategy(section, stats, overlap)
    _other_counts(section, stats)
    _paper(section, stats)
    _runs(ctx, section, run)
    return section


def _series(stats: dict, field: str, scale: float = 1.0) -> dict[str, tuple[list, list]]:
    out = {}
    for strategy, epochs in sorted(stats.items()):
        xs = sorted(epochs)
        if any(field in epochs[e] for e in xs):
            out[strategy] = ([int(e) for e in xs], [epochs[e].get(field, 0) * scale for e in xs])
    return out


def _over_epochs(section: Section, stats: dict) -> None:
    section.figures.append(plots.lines(
        "rows_coverage", "Rows and coverage per epoch",
        [{"title": "manifest rows", "ylabel": "rows (pairs or examples)",
          "series": _series(stats, "rows")},
         {"title": "coverage", "ylabel": "eligible tracks covered (%)",
          "series": _series(stats, "coverage", 100.0), "percent": True}],
        xlabel="epoch", legend="figure",
        caption="per strategy and epoch, from the run's _SUCCESS: rows written, and the share of "
                "eligible tracks that appear in the epoch (anchor or positive)",
    ))  # fmt: skip
    panels = [{"title": "unpaired", "ylabel": "eligible tracks not covered",
               "series": _series(stats, "unpaired")}]  # fmt: skip
    short = _series(stats, "too_short")
    if short:
        panels.append({"title": "too short", "ylabel": "tracks shorter than the crop",
                       "series": short})  # fmt: skip
    title = "Unpaired and too-short tracks per epoch" if short else "Unpaired tracks per epoch"
    section.figures.append(plots.lines(
        "unpaired", title, panels, xlabel="epoch",
        legend="figure", caption="per strategy and epoch: eligible tracks left without a pair "
        "(or without an embedding), and tracks too short for a crop strategy's windows",
    ))  # fmt: skip


def _mean(epochs: dict, field: str) -> float | None:
    values = [s[field] for s in epochs.values() if field in s]
    return float(np.mean(values)) if values else None


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _per_strategy(section: Section, stats: dict, overlap: dict[str, list]) -> None:
    rows = []
    for strategy, epochs in sorted(stats.items()):
        counts = [s["rows"] for s in epochs.values()]
        shared = [v for _, v in overlap.get(strategy, [])]
        coverage = _mean(epochs, "coverage")
        rows.append([strategy, len(epochs), _rounded(_mean(epochs, "rows"), 1), min(counts),
                     max(counts), _rounded(_mean(epochs, "eligible"), 1),
                     None if coverage is None else round(100 * coverage, 2),
                     _rounded(_mean(epochs, "unpaired"), 1),
                     _rounded(_mean(epochs, "too_short"), 1),
                     round(float(np.mean(shared)), 2) if shared else None])  # fmt: skip
    section.tables.append(Table(
        "strategies", "Per strategy (mean over epochs)",
        ["strategy", "epochs", "rows/epoch", "fewest", "most", "eligible tracks", "coverage (%)",
         "unpaired", "too short", "pairs repeated from the previous epoch (%)"], rows,
        note="repeats are measured on sampled consecutive epochs for strategies with a partner "
             "(crop and embedding strategies pair a track with itself)",
    ))  # fmt: skip


SHOWN = {"eligible", "rows", "tracks_covered", "coverage", "unpaired", "too_short", "pairs"}


def _other_counts(section: Section, stats: dict) -> None:
    """Any further per-epoch count a strategy records (tracks left out by reason, ...)."""
    rows = []
    for strategy, epochs in sorted(stats.items()):
        fields = sorted({k for s in epochs.values() for k, v in s.items()
                         if k not in SHOWN and isinstance(v, int | float)})  # fmt: skip
        rows += [[strategy, f, _rounded(_mean(epochs, f), 2)] for f in fields]
    if rows:
        section.tables.append(Table(
            "other_counts", "Other per-epoch counts (mean over epochs)",
            ["strategy", "count", "mean per epoch"], rows,
        ))  # fmt: skip


def _paper(section: Section, stats: dict) -> None:
    rows = []
    for strategy, paper in PAPER.items():
        epochs = stats.get(strategy)
        ours = _mean(epochs, "rows") if epochs else None
        coverage = _mean(epochs, "coverage") if epochs else None
        paper_cov = 200 * paper / PAPER_TRACKS if strategy != "artist_co" else None
        rows.append([strategy, paper, PAPER_TRACKS, None if paper_cov is None else
                     round(paper_cov, 1), None if ours is None else round(ours, 1),
                     None if epochs is None else _rounded(_mean(epochs, "eligible"), 1),
                     None if coverage is None else round(100 * coverage, 2),
                     None if ours is None else float(f"{ours / paper:.4g}")])  # fmt: skip
    section.tables.append(Table(
        "paper", "Pairs per epoch next to the paper",
        ["strategy", "paper: pairs/epoch", "paper: tracks", "paper: coverage (%)",
         "this run: pairs/epoch", "this run: eligible tracks", "this run: coverage (%)",
         "ratio to paper"], rows,
        note="Alonso-Jiménez et al., ICASSP 2023, on the Million Playlist Dataset; CO and TCO "
             "pair each track at most once per epoch (coverage = 2 × pairs / tracks); Artist CO "
             "has no such limit",
    ))  # fmt: skip


def pair_keys(table) -> np.ndarray:
    """One 64-bit key per unordered (anchor, positive) pair."""
    from duet.pipelines.csr import string_keys

    a = string_keys(table.column("anchor_id").combine_chunks())
    b = string_keys(table.column("positive_id").combine_chunks())
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return lo * np.uint64(0x9E3779B97F4A7C15) ^ ((hi << np.uint64(17)) | (hi >> np.uint64(47)))


def distinct(keys: np.ndarray) -> np.ndarray:
    """The sorted distinct values of ``keys`` (a sort, faster than a hash set for uint64)."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def _overlap(ctx: Context, section: Section, run: str, body: dict,
             stats: dict) -> dict[str, list]:  # fmt: skip
    out: dict[str, list] = {}
    for strategy in (s for s in PAIRED if s in stats):
        epochs = sorted(int(e) for e in stats[strategy])
        steps = [e for e in epochs[1:] if e - 1 in epochs]
        if len(steps) > OVERLAP_EPOCHS:  # the run's first and last steps: chained epochs
            steps = steps[: OVERLAP_EPOCHS // 2] + steps[-(OVERLAP_EPOCHS - OVERLAP_EPOCHS // 2) :]
        keys: dict[int, np.ndarray] = {}
        for e in sorted({*steps, *(s - 1 for s in steps)}):
            table = read_all(
                ctx.at(manifest(run, body, strategy, e)),
                schemas.PAIRS,
                ["anchor_id", "positive_id"],
                by_marker=False,
            )  # the run lists it
            keys[e] = distinct(pair_keys(table))
        out[strategy] = [(e, round(100 * len(np.intersect1d(keys[e], keys[e - 1],
                          assume_unique=True)) / max(1, len(keys[e])), 3)) for e in steps]  # fmt: skip
    if any(out.values()):
        section.figures.append(plots.lines(
            "overlap", "Pairs repeated from the previous epoch",
            [{"ylabel": "pairs also in epoch e − 1 (%)",
              "series": {s: ([e for e, _ in v], [p for _, p in v]) for s, v in out.items() if v}}],
            xlabel="epoch e",
            caption="share of an epoch's pairs (unordered) that the previous epoch also had, on "
                    f"up to {OVERLAP_EPOCHS} consecutive epoch pairs per strategy (the run's first "
                    "and last); pairs are "
                    "regenerated every epoch, so high values mean few alternative partners",
        ))  # fmt: skip
    return out


def _runs(ctx: Context, section: Section, current: str) -> None:
    complete = runs(ctx.root)
    rows = [[name, datetime.fromtimestamp(b.get("published", 0), UTC).strftime("%Y-%m-%d %H:%M"),
             ", ".join(b.get("strategies", [])), "–".join(str(e) for e in b.get("epochs", [])),
             "this report" if name == current else ""] for name, b in reversed(complete)]  # fmt: skip
    section.tables.append(Table(
        "runs", "Complete runs under pairs/", ["run", "published (UTC)", "strategies",
                                                "epochs [from, to)", ""], rows,
    ))  # fmt: skip
