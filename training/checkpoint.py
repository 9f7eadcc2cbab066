"""Checkpoints that cannot run code and cannot be resumed corrupt.

A checkpoint is ``torch.save`` of plain data (tensors, numbers, strings, lists, dicts) plus a
``sha256`` over that content. Reading uses ``torch.load(weights_only=True)``, PyTorch's
restricted unpickler, so a file whose pickle would import or call anything else (``os.system``,
``builtins.eval``, ...) is refused before any of it runs; then the digest is recomputed over the
loaded content, so bytes flipped anywhere in tensors, step counters or the recipe are caught
instead of being resumed as garbage weights.

The digest is over the content, not the file: it walks the saved structure in a fixed order
(dict keys sorted) and hashes each tensor's dtype, shape and bytes, so it does not depend on
the zip container's layout and costs one pass over the weights.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Mapping

import torch

from duet.errors import DuetError

FORMAT = "duet-checkpoint/1"


class CheckpointError(DuetError):
    """A checkpoint is unreadable, refers to code, or fails its checksum."""


def _update(h, value) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, Mapping):
        h.update(f"D{len(value)}".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _update(h, key)
            _update(h, value[key])
    elif isinstance(value, list | tuple):
        h.update(f"{type(value).__name__[0]}{len(value)}".encode())
        for item in value:
            _update(h, item)
    elif value is None or isinstance(value, bool | int | float | str):
        text = repr(value).encode()
        h.update(f"{type(value).__name__}:{len(text)}:".encode() + text)
    else:
        raise CheckpointError(f"cannot checksum a {type(value).__name__} in a checkpoint")


def content_digest(content: Mapping) -> str:
    """sha256 (hex) of a checkpoint's content: tensors by dtype, shape and bytes; other
    values by type and ``repr``; dict keys in sorted order."""
    h = hashlib.sha256()
    _update(h, content)
    return h.hexdigest()


def dumps(content: dict) -> bytes:
    """The bytes of a checkpoint holding ``content`` (plain data and tensors) and its digest."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "sha256": content_digest(content), "content": content}, buffer)
    return buffer.getvalue()


def loads(blob: bytes, where: str, map_location: str | torch.device = "cpu") -> dict:
    """The content of a checkpoint written by :func:`dumps`.

    Raises CheckpointError (one line, naming ``where``) when the file is not a checkpoint, when
    its pickle refers to anything but plain data and tensors (it would run code: refused
    unexecuted), or when its content does not match its sha256 (corrupt).
    """
    try:
        saved = torch.load(io.BytesIO(blob), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc)
        if "Unsupported global" in detail or "GLOBAL" in detail:
            culprit = detail.split("GLOBAL", 1)[-1].split()[0] if "GLOBAL" in detail else "?"
            raise CheckpointError(
                f"{where}: refused, its pickle would import {culprit} (a checkpoint holds only "
                "tensors and plain data; never load files from untrusted sources)"
            ) from None
        raise CheckpointError(
            f"{where}: not a readable checkpoint ({detail.splitlines()[0]})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - zip/pickle/tensor errors all mean "corrupt"
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"{where}: corrupt or not a checkpoint ({first})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise CheckpointError(
            f"{where}: not a {FORMAT} checkpoint (written by another tool or an older duet; "
            "train again to make one)"
        )
    if not isinstance(saved.get("content"), dict) or content_digest(saved["content"]) != saved.get(
        "sha256"
    ):
        raise CheckpointError(
            f"{where}: checksum mismatch, the file is corrupt (restore it or train again)"
        )
    return saved["content"]
