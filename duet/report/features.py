"""Features: the per-band statistics of every mel profile, a few mel patches as images, and
how many source samples were beyond full scale (clipped) or scaled down."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import duet.report.plots as plots
from duet import layout, publish, storage
from duet.report.common import Context, Section, Table
from duet.report.tracks import example_tracks, index_sample, read_frames, sidecars, stream_rows

PATCH_FRAMES = 256
"""Frames shown per example patch (Alonso-Jiménez et al.'s patch: 4.1 s at hop 256, 16 kHz)."""


def unit_of(profile: dict) -> str:
    """The unit of a profile's log-mel values, as written on a colour bar or an axis."""
    log = profile.get("log")
    if log == "db":
        return "log-mel power (dB)"
    if log == "log10_1p":
        return f"log10(1 + {profile.get('log_scale', 1):g}·mel power)"
    if log == "ln":
        return "ln(mel power)"
    return "mel power"


def gather(ctx: Context) -> Section:
    section = Section("features", "Features")
    body = ctx.require(section, "", "mel statistics and shards", ctx.command("shards"))
    if body is None:
        return section
    profiles = {p["name"]: p for p in body["config"].get("profiles", [])}
    if not profiles:
        section.notes.append("The shards job wrote no mel stream (--streams had no mel-<profile>).")
    _statistics(ctx, section, profiles)
    _patches(ctx, section, body, profiles)
    _clipping(ctx, section, body)
    return section


def _statistics(ctx: Context, section: Section, profiles: dict) -> None:
    stats = {}
    root = ctx.published("")
    for name in profiles:
        try:
            if root is None:
                raise publish.NotPublished(layout.mel_stats(name))
            stored = root.name(layout.mel_stats(name))
            stats[name] = json.loads(storage.read_bytes(ctx.at(stored)))
        except (publish.NotPublished, OSError, ValueError):
            section.notes.append(f"{layout.mel_stats(name)} is missing from the published root.")
    rows = []
    for name, s in stats.items():
        p, mean, std = s["profile"], np.asarray(s["mean"]), np.asarray(s["std"])
        rows.append([f"mel-{name}", s["split"], s["frames"], p["sample_rate"], p["n_fft"],
                     p["hop_length"], p["n_mels"], unit_of(p),
                     *(round(float(v), 2) for v in (mean.min(), mean.max(), std.min(),
                                                    std.max()))])  # fmt: skip
    if rows:
        section.tables.append(Table(
            "mel_stats", "Mel statistics per profile",
            ["stream", "split", "frames counted", "sample rate (Hz)", "n_fft", "hop", "bands",
             "unit", "mean: lowest band value", "mean: highest", "std: lowest", "std: highest"],
            rows, note="from stats/mel-<profile>.json: what the trainer standardises with; "
                       "per-band arrays in report.json",
        ))  # fmt: skip
    for start in range(0, len(stats), 3):
        chunk = dict(list(stats.items())[start : start + 3])
        section.figures.append(plots.band_profiles(
            f"band_stats_{start // 3}", "Per-band mean and standard deviation",
            {n: (np.asarray(s["mean"]), np.asarray(s["std"])) for n, s in chunk.items()},
            units={n: unit_of(s["profile"]) for n, s in chunk.items()},
            caption="over every frame of the "
            + " / ".join(sorted({f"'{s['split']}'" for s in chunk.values()}))
            + " split; a flat or zero-std band means a profile that does not fit the audio",
        ))  # fmt: skip


def _patches(ctx: Context, section: Section, body: dict, profiles: dict) -> None:
    sample = index_sample(ctx)
    for name, profile in profiles.items():
        rows = stream_rows(sample, f"mel-{name}")
        if not rows.num_rows:
            continue
        tracks = example_tracks(ctx, stream_rows(sample, body["streams"][0]))
        chosen = rows.filter(pc.is_in(rows.column("track_id"), value_set=_ids(tracks)))
        hop_s = profile["hop_length"] / profile["sample_rate"]
        patches = []
        for row in sorted(chosen.to_pylist(), key=lambda r: tracks.index(r["track_id"])):
            count = min(PATCH_FRAMES, row["frames"])
            start = (row["frames"] - count) // 2
            patches.append({"label": _short(row["track_id"]), "start_s": round(start * hop_s, 2),
                            "hop_s": hop_s, "array": read_frames(ctx, row, start, count)})  # fmt: skip
        if patches:
            section.figures.append(plots.mel_patches(
                f"patches_{name}", f"Example patches, mel-{name}", patches, unit=unit_of(profile),
                caption=f"{PATCH_FRAMES} frames ({PATCH_FRAMES * hop_s:.1f} s) from the middle of "
                f"{len(patches)} tracks drawn at random, as stored (float16, before standardising)",
            ))  # fmt: skip


def _ids(ids: list[str]) -> pa.Array:
    return pa.array(ids, pa.string())


def _short(track_id: str, width: int = 28) -> str:
    return track_id if len(track_id) <= width else "…" + track_id[-(width - 1) :]


def _clipping(ctx: Context, section: Section, body: dict) -> None:
    """Clipped source samples: from the index (newer indexes: ``clipped``, ``gain``) and the
    summary when present, else from the sidecars of the tracks sampled for the audio section."""
    over = body["counts"].get("over_range")
    if over:
        section.fact("clipped_tracks", "tracks with clipped source samples",
                     over.get("clipped_tracks"))  # fmt: skip
        section.fact("clipped_samples", "clipped source samples", over.get("clipped_samples"))
        section.fact("scaled_tracks", "tracks scaled down to avoid clipping",
                     over.get("scaled_tracks"))  # fmt: skip
        section.fact("min_gain", "smallest gain applied", over.get("min_gain"))
    sample = index_sample(ctx)
    rows = stream_rows(sample, body["streams"][0])
    if "clipped" in rows.column_names:
        clipped = rows.filter(pc.greater(pc.fill_null(rows.column("clipped"), 0), 0))
        top = sorted(clipped.to_pylist(), key=lambda r: -r["clipped"])[:10]
        section.tables.append(Table(
            "clipped", "Tracks with clipped source samples",
            ["track", "clipped samples", "gain", "decoder"],
            [[r["track_id"], r["clipped"], r.get("gain"), r.get("decoder")] for r in top],
            note=f"{clipped.num_rows:,} of {rows.num_rows:,} indexed tracks read "
                 f"({sample.describe('index rows')}); the 10 with the most clipped samples",
        ))  # fmt: skip
        return
    found = sidecars(ctx, rows)
    if not found:
        return
    key = "clipped" if any("clipped" in s for s in found) else "clipped_samples"
    hits = sorted((s for s in found if s.get(key)), key=lambda s: -s[key])
    section.fact("clipped_in_sample", f"tracks with clipped samples, of {len(found):,} sampled",
                 len(hits))  # fmt: skip
    section.tables.append(Table(
        "clipped", "Tracks with clipped samples (sampled sidecars)",
        ["track", "clipped samples", "source sample rate (Hz)", "decoder"],
        [[s["track_id"], s[key], s.get("source_sample_rate"), s.get("decoder")]
         for s in hits[:10]],
        note=f"samples at int16 full scale when the track was quantised, from the .json "
             f"sidecars of {len(found):,} tracks drawn at random (this index predates per-track "
             "clipping columns)",
    ))  # fmt: skip
