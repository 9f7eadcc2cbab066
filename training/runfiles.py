"""The files of a training run folder (local or bucket): ``checkpoint.pt`` (see
:mod:`duet.training.checkpoint`) and ``metrics.jsonl`` (one JSON record per step), read and
written by URI. A local file is written to a temporary name and renamed, so a run killed
mid-write keeps its previous checkpoint; an object store write is one PUT."""

from __future__ import annotations

import os

import fsspec

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"


def options(uri: str, endpoint: str | None) -> dict:
    """fsspec options: an S3-compatible endpoint for ``s3://`` URIs."""
    return (
        {"client_kwargs": {"endpoint_url": endpoint}}
        if endpoint and uri.startswith("s3://")
        else {}
    )


def at(out: str, name: str) -> str:
    return f"{out.rstrip('/')}/{name}"


def write(uri: str, payload: bytes, endpoint: str | None) -> None:
    tmp = uri + ".tmp" if "://" not in uri else uri  # one PUT on object stores
    if "://" not in uri:
        os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
    with fsspec.open(tmp, "wb", **options(uri, endpoint)) as f:
        f.write(payload)
    if tmp != uri:
        os.replace(tmp, uri)


def read(uri: str, endpoint: str | None) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    fs, path = fsspec.core.url_to_fs(uri, **options(uri, endpoint))
    return fs.cat_file(path) if fs.exists(path) else None


def exists(uri: str, endpoint: str | None) -> bool:
    fs, path = fsspec.core.url_to_fs(uri, **options(uri, endpoint))
    return bool(fs.exists(path))
