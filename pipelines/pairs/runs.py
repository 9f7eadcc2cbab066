"""Complete pair runs of a dataset root: ``pairs/LATEST`` (the newest, replaced in one write),
the list of runs, and pruning the oldest."""

from __future__ import annotations

import os

from duet import layout, publish, storage


def write_latest(data: str, run: str) -> None:
    """Point ``pairs/LATEST`` of the dataset root ``data`` at ``run`` in one write (a rename
    locally)."""
    uri = layout.at(data, layout.LATEST)
    if storage.is_remote(uri):
        storage.write_bytes(uri, run.encode())  # one PUT: readers see the old or the new
        return
    tmp = storage.local_path(uri) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(run.encode())
    os.replace(tmp, storage.local_path(uri))


def latest_run(data: str) -> str:
    """The newest complete run of a dataset root (what a trainer reads at an epoch boundary)."""
    uri = layout.at(data, layout.LATEST)
    if not storage.exists(uri):
        raise publish.NotPublished(f"{data} has no published pair run ({uri} missing)")
    run = storage.read_bytes(uri).decode().strip()
    publish.require_success(layout.at(data, layout.pair_run(run)))
    return run


def runs(data: str) -> list[tuple[str, dict]]:
    """Complete runs of a dataset root with their markers, oldest first (by ``published``)."""
    root = layout.at(data, layout.PAIRS)
    found: dict[str, dict] = {}
    for uri in storage.list_files(root):
        parts = uri[len(root) :].strip("/").split("/")
        if len(parts) == 2 and parts[1] == publish.SUCCESS:
            found[parts[0]] = publish.require_success(layout.at(data, layout.pair_run(parts[0])))
    return sorted(found.items(), key=lambda kv: (kv[1].get("published", 0), kv[0]))


def prune(data: str, keep: int, protect: str) -> list[str]:
    """Delete all but the newest ``keep`` complete runs (never ``protect``)."""
    complete = [r for r, _ in runs(data)]
    doomed = [r for r in complete[: max(len(complete) - keep, 0)] if r != protect]
    for run in doomed:
        folder = layout.at(data, layout.pair_run(run))
        publish.clear_success(folder)  # unpublish first: readers stop trusting it
        storage.delete_tree(folder)
    return doomed
