"""Complete pair runs under ``pairs/``: ``LATEST`` (the newest, replaced in one write), the
list of runs, and pruning the oldest."""

from __future__ import annotations

from duet import publish, storage

PAIRS_DIR = "pairs"
LATEST = "LATEST"


def write_latest(root: str, run: str) -> None:
    """Point ``pairs/LATEST`` at ``run`` in one write (a rename locally)."""
    uri = storage.join(root, LATEST)
    if storage.is_remote(uri):
        storage.write_bytes(uri, run.encode())  # one PUT: readers see the old or the new
        return
    import os

    tmp = storage.local_path(uri) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(run.encode())
    os.replace(tmp, storage.local_path(uri))


def latest_run(data: str) -> str:
    """The newest complete run of a dataset root (what a trainer reads at an epoch boundary)."""
    uri = storage.join(data, PAIRS_DIR, LATEST)
    if not storage.exists(uri):
        raise publish.NotPublished(f"{data} has no published pair run ({uri} missing)")
    run = storage.read_bytes(uri).decode().strip()
    publish.require_success(storage.join(data, PAIRS_DIR, run))
    return run


def runs(root: str) -> list[tuple[str, dict]]:
    """Complete runs under ``pairs/`` with their markers, oldest first (by ``published``)."""
    found = {}
    for uri in storage.list_files(root):
        parts = uri[len(root) :].strip("/").split("/")
        if len(parts) == 2 and parts[1] == publish.SUCCESS:
            found[parts[0]] = publish.read_success(storage.join(root, parts[0]))
    return sorted(found.items(), key=lambda kv: (kv[1].get("published", 0), kv[0]))


def prune(root: str, keep: int, protect: str) -> list[str]:
    """Delete all but the newest ``keep`` complete runs (never ``protect``)."""
    complete = [r for r, _ in runs(root)]
    doomed = [r for r in complete[: max(len(complete) - keep, 0)] if r != protect]
    for run in doomed:
        folder = storage.join(root, run)
        publish.clear_success(folder)  # unpublish first: readers stop trusting it
        storage.delete_tree(folder)
    return doomed
