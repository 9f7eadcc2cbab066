"""Atomic publish: a folder is visible to readers only once its ``_SUCCESS`` marker exists.

Object stores have no atomic rename, so jobs write final, deterministic names directly and
write the marker last; a re-run removes the marker first, so readers never see a mix.
"""

from __future__ import annotations

import hashlib
import json

from duet import storage
from duet.errors import DuetError

SUCCESS = "_SUCCESS"


class NotPublished(DuetError, FileNotFoundError):
    """The folder has no ``_SUCCESS`` marker: a run is in progress, failed, or never ran."""


def marker_uri(root: str) -> str:
    return storage.join(root, SUCCESS)


def dumps(body: dict) -> bytes:
    """Canonical JSON (sorted keys), so identical runs write identical markers."""
    return json.dumps(body, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8")


def read_success(root: str) -> dict | None:
    uri = marker_uri(root)
    return json.loads(storage.read_bytes(uri)) if storage.exists(uri) else None


def require_success(root: str) -> dict:
    body = read_success(root)
    if body is None:
        raise NotPublished(
            f"{root} is not published: no {SUCCESS} marker (incomplete or running job)"
        )
    return body


def clear_success(root: str) -> None:
    storage.delete([marker_uri(root)])


def write_success(root: str, body: dict) -> None:
    storage.write_bytes(marker_uri(root), dumps(body))


def input_fingerprint(uri: str) -> str:
    """Digest identifying an input: the ``_SUCCESS`` marker of a published folder (its content
    is what the producing job read and wrote), else the files' names, sizes and mtimes."""
    marker = read_success(uri)
    if marker is not None:
        return hashlib.sha256(dumps(marker)).hexdigest()
    files = [u for u in storage.list_files(uri) if not u.endswith(SUCCESS)] or [uri]
    stamp = [[u[len(uri) :], *storage.file_size_and_mtime(u)] for u in files]
    return hashlib.sha256(json.dumps(stamp).encode()).hexdigest()
