"""Complete pair runs of a dataset root: ``pairs/LATEST`` (the newest, replaced in one write),
the list of runs, where a run keeps each epoch's manifest, and pruning the oldest."""

from __future__ import annotations

from duet import layout, publish, storage

MADE_BY = "duet pairs"


def write_latest(data: str, run: str) -> None:
    """Point ``pairs/LATEST`` of the dataset root ``data`` at ``run`` in one write (a rename
    locally, one upload on object stores: readers see the old or the new)."""
    storage.write_bytes(layout.at(data, layout.LATEST), layout.slug(run, "run id").encode())


def parse_latest(data: bytes | None, where: str) -> str:
    """The run id ``LATEST`` holds; NotPublished when it is missing, empty or not a run id."""
    text = (data or b"").decode("utf-8", "replace").strip()
    try:
        return layout.slug(text, "run id")
    except layout.InvalidName:
        raise publish.NotPublished(f"{where} names no published pair run (run {MADE_BY})") from None


def read_run(data: str, run: str | None = None) -> tuple[str, dict]:
    """A published run (default: the one ``LATEST`` names) and its ``_SUCCESS``."""
    if run is None:
        uri = layout.at(data, layout.LATEST)
        try:
            raw = storage.read_bytes(uri)
        except OSError:
            raw = None
        run = parse_latest(raw, uri)
    body = publish.open_folder(layout.at(data, layout.pair_run(run)), MADE_BY).body
    return run, body


def latest_run(data: str) -> str:
    """The newest complete run of a dataset root (what a trainer reads at an epoch boundary)."""
    return read_run(data)[0]


def manifest(run: str, body: dict, strategy: str, epoch: int) -> str:
    """Where a published run keeps one epoch's manifest (relative to the dataset root): the
    file its ``_SUCCESS`` lists, or the fixed name of pairs format 1."""
    folder = layout.pair_run(run)
    published = publish.Published(folder, body)
    if published.legacy:
        return layout.legacy_pair_manifest(run, strategy, epoch)
    return f"{folder}/{published.name(layout.pair_part(strategy, epoch))}"


def runs(data: str) -> list[tuple[str, dict]]:
    """Complete runs of a dataset root with their markers, oldest first (by ``published``)."""
    root = layout.at(data, layout.PAIRS)
    found = {}
    for uri in storage.list_files(root):
        parts = uri[len(root) :].replace("\\", "/").strip("/").split("/")
        if len(parts) == 2 and parts[1] == publish.SUCCESS:
            try:
                folder = layout.pair_run(parts[0])
            except layout.InvalidName:  # not a folder duet wrote
                continue
            body = publish.read_success(layout.at(data, folder))
            if body is not None:
                found[parts[0]] = body
    return sorted(found.items(), key=lambda kv: (kv[1].get("published", 0), kv[0]))


def prune(data: str, keep: int, protect: str) -> list[str]:
    """Delete all but the newest ``keep`` complete runs (never ``protect``)."""
    complete = [r for r, _ in runs(data)]
    doomed = [r for r in complete[: max(len(complete) - keep, 0)] if r != protect]
    for run in doomed:
        publish.retire(layout.at(data, layout.pair_run(run)))  # marker first: readers stop
    return doomed
