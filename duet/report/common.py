"""What every section of the report shares: the section model (facts, figures, tables, what is
missing and which command makes it) and the context a section reads the dataset root through.

A section only ever reads a folder whose ``_SUCCESS`` marker is present and parses; anything
else becomes a :class:`Missing` entry naming the command that publishes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from duet import layout, publish, storage


@dataclass(frozen=True)
class Fact:
    """One number shown in a section's summary. ``unit`` is "" (a count), "%", "s", "h",
    "GB", "MB" or any other short unit string; ``value`` is in that unit."""

    key: str
    label: str
    value: float | int | str | None
    unit: str = ""


@dataclass(frozen=True)
class Figure:
    """A rendered plot (PNG bytes) and the numbers it shows (written to report.json)."""

    key: str
    title: str
    png: bytes
    caption: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Table:
    """Rows of values (str, int, float or None) under named columns."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


def drop_empty_columns(columns: list[str], rows: list[list[Any]]) -> tuple[list[str], list]:
    """The columns that hold at least one value, and the rows without the others."""
    keep = [i for i in range(len(columns)) if any(r[i] is not None for r in rows)]
    return [columns[i] for i in keep], [[r[i] for i in keep] for r in rows]


@dataclass(frozen=True)
class Missing:
    """A part of the dataset the section could not show, why, and the command that makes it."""

    what: str
    reason: str
    command: str | None = None


@dataclass
class Section:
    key: str
    title: str
    facts: list[Fact] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: list[tuple[str, Any]] = field(default_factory=list)
    """Documents shown as JSON under a collapsed heading (markers, configs)."""
    seconds: float = 0.0

    @property
    def status(self) -> str:
        """``ok`` (everything shown), ``partial`` (some parts missing) or ``missing``."""
        shown = self.facts or self.figures or self.tables
        if not self.missing:
            return "ok" if shown else "missing"
        return "partial" if shown else "missing"

    def fact(self, key: str, label: str, value, unit: str = "") -> None:
        self.facts.append(Fact(key, label, value, unit))

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "facts": {f.key: {"label": f.label, "value": f.value, "unit": f.unit}
                      for f in self.facts},
            "figures": {f.key: {"title": f.title, "caption": f.caption, "data": f.data}
                        for f in self.figures},
            "tables": {t.key: {"title": t.title, "columns": t.columns, "rows": t.rows,
                               "note": t.note} for t in self.tables},
            "missing": [{"what": m.what, "reason": m.reason, "command": m.command}
                        for m in self.missing],
            "notes": self.notes,
            "documents": dict(self.raw),
        }  # fmt: skip


class Context:
    """The dataset root as the sections see it: published markers (read once), the pair run
    asked for, the sampling seed and budget, and values one section hands to another (the
    example tracks, for instance)."""

    def __init__(self, root: str, run: str | None = None, *, seed: int = 0,
                 max_rows: int = 1_000_000, examples: int = 3):  # fmt: skip
        self.root = root
        self.run = run
        self.seed = seed
        self.max_rows = max_rows
        """Rows read per table at most: larger tables are sampled by Parquet row group."""
        self.examples = examples
        self.shared: dict[str, Any] = {}
        self._markers: dict[str, dict | None] = {}
        self.unreadable: dict[str, str] = {}

    def at(self, relative: str) -> str:
        return layout.at(self.root, relative) if relative else self.root

    def marker(self, folder: str) -> dict | None:
        """The ``_SUCCESS`` body of ``folder`` (relative; "" is the root), or None when it is
        absent or unreadable (an unreadable marker means "not published")."""
        if folder not in self._markers:
            body = publish.read_success(self.at(folder))
            if body is None and storage.exists(publish.marker_uri(self.at(folder))):
                self.unreadable[folder] = (f"unreadable {layout.SUCCESS} (empty, truncated or "
                                           "not a marker)")  # fmt: skip
            self._markers[folder] = body
        return self._markers[folder]

    def published(self, folder: str) -> publish.Published | None:
        """The published ``folder`` (relative; "" is the root) as its marker lists it, from
        the marker read once (so every section reads the same generation), or None."""
        body = self.marker(folder)
        if body is None:
            return None
        where = self.at(folder)
        prefix = storage.join(where, "")
        return publish.Published(where, body, lambda: [u[len(prefix) :].replace("\\", "/")
                                                       for u in storage.list_files(where)])  # fmt: skip

    def markers(self) -> dict[str, dict]:
        """Every marker read so far that is published, by folder."""
        return {k: v for k, v in self._markers.items() if v is not None}

    def require(self, section: Section, folder: str, what: str, command: str) -> dict | None:
        """The marker of ``folder``, or None after recording in ``section`` why ``what`` is
        not shown and which command publishes it."""
        body = self.marker(folder)
        if body is None:
            section.missing.append(Missing(what, self.why_missing(folder), command))
        return body

    def why_missing(self, folder: str) -> str:
        if folder in self.unreadable:
            return f"{self.unreadable[folder]}; not read"
        evidence = self.at(folder) if folder else self.at(layout.INDEX)  # the root always exists
        if storage.exists(evidence):
            return (f"{folder or 'the root'} exists but has no {layout.SUCCESS} marker (a run is "
                    "in progress or failed); not read")  # fmt: skip
        return "not made yet"

    def embedding_models(self) -> list[str]:
        """The model folders under ``emb/`` (published or not), sorted."""
        prefix = storage.join(self.at(layout.EMB), "")
        found = {u[len(prefix) :].replace("\\", "/").split("/")[0]
                 for u in storage.list_files(self.at(layout.EMB))}  # fmt: skip
        return sorted(f for f in found if f)

    def command(self, name: str) -> str:
        """The command line that publishes part ``name`` of this root."""
        root = self.root
        commands = {
            "shards": f"duet shards --tracks MANIFEST --output {root}",
            "playlists": f"duet playlists --input FILES --format mpd|melon|table --output {root}",
            "cooccurrence": f"duet cooccurrence --playlists {self.at(layout.PLAYLISTS)} "
                            f"--output {root}",
            "cooccurrence-artist": f"duet cooccurrence --playlists {self.at(layout.PLAYLISTS)} "
                                   f"--output {root} --group-by artist",
            "w2v": f"duet embeddings w2v --playlists {self.at(layout.PLAYLISTS)} --output {root}",
            "cf": f"duet embeddings cf --model warp --playlists {self.at(layout.PLAYLISTS)} "
                  f"--output {root}",
            "genre-w2v": f"duet embeddings genre-w2v --track-meta {self.at(layout.TRACK_META)} "
                         f"--output {root}",
            "splits": f"duet splits --track-meta {self.at(layout.TRACK_META)} --output {root}",
            "pairs": f"duet pairs --data {root} --strategies playlist_co,playlist_tco "
                     "--epochs 0:50",
        }  # fmt: skip
        return commands[name]


def inputs_of(body: dict) -> dict[str, dict]:
    """``{name: {"uri", "fingerprint"}}`` from a marker's ``inputs``, whichever shape its job
    wrote (``{name: {uri, fingerprint}}``, or one flat ``{<name>: uri, fingerprint}``)."""
    inputs = body.get("inputs") or {}
    if "fingerprint" in inputs and not isinstance(inputs["fingerprint"], dict):
        rest = {k: v for k, v in inputs.items() if k != "fingerprint"}
        name, uri = next(iter(rest.items()), ("input", None))
        return {name: {"uri": uri if isinstance(uri, str) else None,
                       "fingerprint": inputs["fingerprint"]}}  # fmt: skip
    return {k: v for k, v in inputs.items() if isinstance(v, dict)}
