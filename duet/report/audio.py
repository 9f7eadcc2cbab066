"""Audio: what the shards job indexed and refused, how long the tracks are, what the sources
were (sample rates, channels, file types, decoders), and what each stream costs in storage."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import duet.report.plots as plots
from duet import layout, schemas, storage
from duet.report.common import Context, Section, Table, inputs_of
from duet.report.sample import column_names, pick, read_all, read_sample
from duet.report.tracks import index_sample, sidecars, stream_rows

REPORTS = 300
"""Per-shard reports read for shard sizes at most (seeded sample beyond that; 16 in flight on
object stores)."""
FAILURE_ROWS = 200_000


def gather(ctx: Context) -> Section:
    section = Section("audio", "Audio")
    body = ctx.require(section, "", "audio shards, index and failures", ctx.command("shards"))
    if body is None:
        return section
    counts = body["counts"]
    rows = counts["input_rows"] or 1
    section.fact("input_rows", "input rows (tracks in the manifest)", counts["input_rows"])
    section.fact("indexed", "tracks indexed", counts["indexed"])
    section.fact("failed", "tracks failed", counts["failed"])
    section.fact("failed_share", "failed share", round(100 * counts["failed"] / rows, 2), "%")
    section.fact("source_hours", "audio decoded", round(body["source_seconds"] / 3600, 3), "h")
    section.fact("stored_hours", "audio stored per stream", round(body["audio_seconds"] / 3600, 3),
                 "h")  # fmt: skip
    section.fact("shards", "shards per stream", body["num_shards"])
    for name, value in sorted(counts.get("decode_check", {}).items()):
        section.fact(f"decode_check_{name}", f"decode check: {name.replace('_', ' ')}", value)
    primary = body["streams"][0]
    sample = index_sample(ctx)
    tracks = stream_rows(sample, primary)
    _durations(section, body, tracks, sample)
    _sources(ctx, section, tracks)
    _decode_notes(section, tracks)
    _failures(ctx, section)
    _storage(ctx, section, body)
    return section


def _durations(section: Section, body: dict, tracks, sample) -> None:
    column = "source_duration" if "source_duration" in tracks.column_names else "duration"
    values = tracks.column(column).to_numpy(zero_copy_only=False)
    values = values[np.isfinite(values.astype(np.float64))] if len(values) else values
    if not len(values):
        return
    marks = {"median": float(np.median(values))}
    config = body["config"]
    if config.get("max_seconds"):
        marks["excerpt kept"] = float(config["max_seconds"])
    section.fact("median_duration", "median track duration", round(marks["median"], 1), "s")
    what = "decoded length of each source" if column == "source_duration" else \
        "stored length of each track (the excerpt, when --max-seconds is set)"  # fmt: skip
    share = sample.describe("index rows")
    section.figures.append(plots.histogram(
        "duration", "Track duration", values, xlabel="duration (s)", ylabel="tracks",
        caption=f"{what}; {len(values):,} tracks of the {body['streams'][0]} stream, from {share}",
        bins=min(60, max(10, len(values) // 4)), marks=marks, unit="s",
    ))  # fmt: skip


def _file_type(audio_uri: str | None) -> str:
    if not audio_uri:
        return "unknown"
    ext = os.path.splitext(audio_uri.split("?", 1)[0])[1].lower().lstrip(".")
    return ext or "(none)"


def _manifest_types(body: dict, ids: list[str]) -> dict[str, str]:
    """File type (extension) of each of ``ids`` from the track manifest the shards job read;
    a glob of audio files names its tracks by path, so the id carries the extension."""
    spec = inputs_of(body).get("tracks", {}).get("uri")
    if not isinstance(spec, str):
        return {}
    name = spec.lower().removesuffix(".gz")
    if not name.endswith((".parquet", ".csv", ".jsonl", ".json", ".ndjson")):
        return {t: _file_type(t) for t in ids}
    if not storage.exists(spec):
        return {}
    if name.endswith(".parquet"):  # two columns of a possibly large manifest
        if not {"track_id", "audio_uri"} <= set(column_names(spec, by_marker=False)):
            return {}
        table = read_all(spec, schemas.TRACK_MANIFEST, ["track_id", "audio_uri"], by_marker=False)
    else:
        table = schemas.table_from_bytes(storage.read_bytes(spec), spec, strings=("track_id",))
    if not {"track_id", "audio_uri"} <= set(table.column_names):
        return {}
    wanted = table.filter(pc.is_in(table.column("track_id").cast("string"), value_set=_pa(ids)))
    return {str(t): _file_type(u) for t, u in zip(wanted.column("track_id").to_pylist(),
                                                  wanted.column("audio_uri").to_pylist(),
                                                  strict=True)}  # fmt: skip


def _pa(ids: list[str]) -> pa.Array:
    return pa.array(ids, pa.string())


def _codecs(ctx: Context, found: list[dict]) -> tuple[str, Counter, str]:
    """What the sources were encoded as: the sidecars' ``codec``/``container`` when the shards
    job records one, else the file type by the extension of the manifest's audio_uri."""
    if any(s.get("codec") or s.get("container") for s in found):
        counts = Counter(str(s.get("codec") or s.get("container") or "unknown") for s in found)
        return "source codec", counts, "codec as the shards job recorded it"
    types = _manifest_types(ctx.marker("") or {}, [s["track_id"] for s in found])
    counts = Counter(types.get(s["track_id"], "unknown") for s in found)
    return "file type (audio_uri extension)", counts, "file type is the extension of the " \
        "manifest's audio_uri (the sidecars record no codec)"  # fmt: skip


def _sources(ctx: Context, section: Section, tracks) -> None:
    found = sidecars(ctx, tracks)
    if not found:
        section.notes.append("No sidecar could be read from the shards (source formats unknown).")
        return
    codec, codecs, how = _codecs(ctx, found)
    panels = [
        ("source sample rate (Hz)", Counter(f"{s.get('source_sample_rate', '?')}" for s in found)),
        ("source channels", Counter(f"{s.get('source_channels', '?')}" for s in found)),
        (codec, codecs),
        ("decoder", Counter(str(s.get("decoder", "?")).split(" ")[0] for s in found)),
    ]
    rows = []
    for what, counter in panels:
        for value, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append([what, value, n, round(100 * n / len(found), 1)])
    section.tables.append(Table(
        "sources", "Sources", ["property", "value", "tracks", "share (%)"], rows,
        note=f"from the .json sidecars of {len(found):,} tracks drawn at random from the index",
    ))  # fmt: skip
    section.figures.append(plots.count_panels(
        "sources", "Sources", [(w, dict(c)) for w, c in panels], xlabel="tracks",
        caption=f"source properties of {len(found):,} tracks drawn at random (their .json "
                f"sidecars); {how}",
    ))  # fmt: skip


def _decode_notes(section: Section, tracks) -> None:
    """Tracks whose decoded length disagrees with what the file declares (newer indexes)."""
    if "length_check" not in tracks.column_names:
        return
    checks = Counter(v or "undeclared" for v in tracks.column("length_check").to_pylist())
    flagged = tracks.filter(pc.is_in(tracks.column("length_check"), value_set=_pa(["short",
                                                                               "long"])))  # fmt: skip
    rows = [[r["track_id"], r["length_check"], r["decoder"], r["declared_duration"],
             r["source_duration"], r["decode_note"]] for r in flagged.slice(0, 20).to_pylist()]  # fmt: skip
    section.tables.append(Table(
        "decode_check", "Decoded length against the length each file declares",
        ["track", "check", "decoder", "declared (s)", "decoded (s)", "note"], rows,
        note="length checks in the indexed rows read: " + ", ".join(
            f"{k} {v:,}" for k, v in sorted(checks.items())) + "; first 20 short/long tracks",
    ))  # fmt: skip


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def reason_of(error: str) -> str:
    """The kind of an error message: its text before a colon when it has a short prefix
    ("too short: 0.4 s < 1 s" → "too short"), else the message with numbers masked."""
    head, sep, _ = error.partition(":")
    if sep and 0 < len(head) <= 40:
        return head.strip()
    return _NUMBER.sub("N", error.strip())[:90]


def _failures(ctx: Context, section: Section) -> None:
    sample = read_sample(ctx.at(layout.FAILURES), schemas.FAILURES,
                         ["track_id", "audio_uri", "stage", "error"], FAILURE_ROWS, ctx.seed)  # fmt: skip
    if not sample.total:
        section.notes.append("No track failed.")
        return
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in sample.table.to_pylist():
        groups.setdefault((row["stage"], reason_of(row["error"])), []).append(row)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    rows = [[stage, reason, len(items), ", ".join(str(r["track_id"]) for r in items[:3]),
             items[0]["error"][:200]] for (stage, reason), items in ordered]  # fmt: skip
    section.tables.append(Table(
        "failures", "Failures by stage and reason",
        ["stage", "reason", "tracks", "examples", "first message"], rows,
        note=f"from {sample.describe('failure rows')} of failures/",
    ))  # fmt: skip
    by_stage: Counter[str] = Counter()
    for (stage, _), items in groups.items():
        by_stage[stage] += len(items)
    labels = [f"{s}: {r}"[:48] for (s, r), _ in ordered[:15]]
    section.figures.append(plots.bars(
        "failures", "Failures by stage and reason", labels, [len(i) for _, i in ordered[:15]],
        xlabel="tracks", caption=f"tracks refused, by stage and kind of error ({sample.describe('failure rows')}); "
        f"stages: " + ", ".join(f"{k} {v:,}" for k, v in sorted(by_stage.items())),
    ))  # fmt: skip


def _storage(ctx: Context, section: Section, body: dict) -> None:
    root = ctx.published("")
    reports = [layout.at(ctx.root, n) for n in root.parts(layout.REPORTS, ".json")] if root else []
    chosen = pick(reports, REPORTS, ctx.seed, "shard-reports")
    sizes: dict[str, list[float]] = {s: [] for s in body["streams"]}
    with ThreadPoolExecutor(16 if storage.is_remote(ctx.root) else 1) as pool:
        found = list(pool.map(lambda uri: json.loads(storage.read_bytes(uri)), chosen))
    for report in found:
        for stream, n in report.get("bytes", {}).items():
            sizes.setdefault(stream, []).append(n / 1e6)
    total = body["bytes"]
    rows = []
    for stream in body["streams"]:
        values = np.asarray(sizes.get(stream, []))
        rows.append([stream, round(total.get(stream, 0) / 1e9, 3),
                     round(total.get(stream, 0) / max(1, body["counts"]["indexed"]) / 1e6, 3),
                     len(values), *(round(float(f(values)), 1) if len(values) else None
                                    for f in (np.min, np.median, np.max))])  # fmt: skip
    section.fact("storage_gb", "storage, all streams", round(sum(total.values()) / 1e9, 3), "GB")
    described = f"all {len(reports):,}" if len(chosen) == len(reports) else \
        f"{len(chosen):,} of {len(reports):,} (drawn at random)"  # fmt: skip
    section.tables.append(Table(
        "storage", "Storage per stream",
        ["stream", "total (GB)", "per track (MB)", "shards read", "smallest shard (MB)",
         "median shard (MB)", "largest shard (MB)"], rows,
        note=f"totals from the root's _SUCCESS; shard sizes from {described} per-shard reports",
    ))  # fmt: skip
    section.figures.append(plots.bars(
        "storage", "Storage per stream", list(body["streams"]),
        [total.get(s, 0) / 1e9 for s in body["streams"]], xlabel="storage (GB)",
        annotate="{:,.3f} GB", caption="bytes of each stream's tar shards (the root's _SUCCESS)",
    ))  # fmt: skip
    if any(sizes.values()):
        section.figures.append(plots.overlaid_histograms(
            "shard_sizes", "Shard sizes", {s: v for s, v in sizes.items() if v},
            xlabel="shard size (MB)", ylabel="shards",
            caption=f"size of each tar shard per stream, from {described} per-shard reports",
        ))  # fmt: skip
