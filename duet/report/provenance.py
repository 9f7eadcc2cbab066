"""Provenance: every published marker of the root — job, code and format version, wall time,
inputs with their fingerprints (and whether each published input is still the one the table was
built from), and the full marker as JSON."""

from __future__ import annotations

import json

from duet import layout, publish, storage
from duet.report.common import Context, Section, Table, inputs_of

KNOWN = ("", layout.PLAYLISTS, layout.TRACK_META, layout.COOC["playlist"], layout.COOC["artist"],
         layout.SPLITS)  # fmt: skip


def freshness(uri: str | list | None, fingerprint: str | None) -> str:
    """Whether an input is still what a table was built from: its fingerprint now (see
    :func:`duet.publish.input_fingerprint`) against the recorded one. Only inputs that duet
    published (a folder with a marker, or a table file in one) are checked; raw inputs
    (playlist files, manifests) are fingerprinted by their jobs in their own way."""
    if not uri or not fingerprint:
        return "not recorded"
    if not isinstance(uri, str):
        return "raw input (not checked)"
    try:
        published = any(publish.read_success(u) is not None for u in (uri, storage.dirname(uri)))
    except ValueError:
        return "unreadable marker now"
    if not published:
        present = any(c in uri for c in "*?[") or storage.exists(uri)  # a glob: its job's own
        return "raw input (not checked)" if present else "gone"
    try:  # a published table's files are stored under the names its marker lists
        publish.table_uris(uri, "its job", suffix="")
    except publish.NotPublished:
        return "gone"
    same = publish.input_fingerprint(uri) == fingerprint
    return "current" if same else "changed since: rebuild this table"


def gather(ctx: Context) -> Section:
    section = Section("provenance", "Provenance")
    for folder in (*KNOWN, *(layout.embedding_folder(m) for m in ctx.embedding_models())):
        ctx.marker(folder)
    if ctx.shared.get("run"):
        ctx.marker(layout.pair_run(ctx.shared["run"]))
    rows, inputs, stale = [], [], 0
    for folder, body in sorted(ctx.markers().items()):
        name = f"{folder}/" if folder else "(root)"
        rows.append([name, body.get("job"), body.get("model"), body.get("code_version"),
                     body.get("format_version"), body.get("wall_time_s"),
                     len(inputs_of(body))])  # fmt: skip
        for role, item in sorted(inputs_of(body).items()):
            state = freshness(item.get("uri"), item.get("fingerprint"))
            stale += state.startswith("changed")
            uri = item.get("uri")
            uri = ", ".join(uri) if isinstance(uri, list) else uri
            inputs.append([name, role, uri, (item.get("fingerprint") or "")[:16],
                           state])  # fmt: skip
        section.raw.append((f"{name}{layout.SUCCESS}", body))
    section.fact("markers", "published markers", len(rows))
    section.fact("stale", "tables built from an input that has changed since", stale)
    versions = sorted({str(r[3]) for r in rows if r[3]})
    section.fact("code_versions", "code versions", ", ".join(versions) or None)
    section.tables.append(Table(
        "markers", "Published parts", ["folder", "job", "model", "code version", "format",
                                       "wall time (s)", "inputs"], rows,
        note="wall time is recorded by the single-process table jobs; the Beam jobs leave it out "
             "so that identical runs write identical markers",
    ))  # fmt: skip
    section.tables.append(Table(
        "inputs", "Inputs and their fingerprints", ["folder", "input", "uri", "fingerprint",
                                                    "now"], inputs,
        note="fingerprint = sha256 of the input's _SUCCESS marker (published inputs) or of its "
             "files' names, sizes and modification times; 'now' compares it with the input today",
    ))  # fmt: skip
    nightly = ctx.at(layout.NIGHTLY)
    if storage.exists(nightly):
        section.raw.append((layout.NIGHTLY, json.loads(storage.read_bytes(nightly))))
    for folder, why in sorted(ctx.unreadable.items()):
        section.notes.append(f"{folder or '(root)'}: {why}")
    return section
