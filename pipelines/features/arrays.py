"""One feature array: ``.npy`` bytes checked against the profile and turned into a stored mel
member's values (float16, time-major ``[frames, n_mels]``).

The header is parsed by numpy's own (literal-only) header reader before any data is touched;
an object dtype — a pickled ``.npy`` — is refused and never loaded, and the payload is viewed
with ``np.frombuffer`` only once its length is checked against the header. Every refusal is an
:class:`ArrayError` with a stage (``read``, ``parse``, ``validate``) and a one-line reason.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass

import numpy as np

ORIENTATIONS = ("bands-frames", "frames-bands")
"""Axis order of the source arrays: ``bands-frames`` is frequency-major ``(n_mels, frames)``
(librosa, Essentia, Melon); ``frames-bands`` is time-major ``(frames, n_mels)``."""
FLOAT16_MAX = 65504.0
HEADER_ALLOWANCE = 1 << 16
"""Bytes a ``.npy`` header may take before its data (format 2.0 allows up to 4 GiB; numpy
itself writes at most a few hundred bytes)."""
_HEADER_LOCK = threading.Lock()
"""numpy parses headers with ``ast.literal_eval``, which CPython 3.11 can fail with a spurious
"AST constructor recursion depth mismatch" SystemError when threads parse at once
(python/cpython#106905; seen here with read-ahead threads): one header at a time."""


class ArrayError(Exception):
    """A feature array cannot be imported; ``stage`` and ``message`` become a failure row."""

    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


@dataclass(frozen=True)
class ArraySpec:
    """What every array of an import must be."""

    n_mels: int
    orientation: str = "bands-frames"
    min_frames: int = 256
    max_frames: int = 1 << 20

    def __post_init__(self):
        if self.orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {ORIENTATIONS}, not {self.orientation!r}")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError("need 1 <= min_frames <= max_frames")

    @property
    def max_bytes(self) -> int:
        """The largest file worth reading: a header plus ``max_frames`` of float64."""
        return HEADER_ALLOWANCE + self.max_frames * self.n_mels * 8


@dataclass(frozen=True)
class Header:
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    data_offset: int


def read_header(data: bytes) -> Header:
    """The ``.npy`` header of ``data``; ArrayError (stage ``parse``) when there is none."""
    if len(data) == 0:
        raise ArrayError("read", "empty file")
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
    except ValueError:
        raise ArrayError("parse", "not a .npy file (no NUMPY magic string)") from None
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}  # fmt: skip
    if version not in readers:
        raise ArrayError("parse", f".npy format version {version[0]}.{version[1]} is not supported")
    try:
        with _HEADER_LOCK:
            shape, fortran_order, dtype = readers[version](stream, max_header_size=HEADER_ALLOWANCE)
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        raise ArrayError("parse", f"unreadable .npy header: {str(exc)[:200]}") from None
    return Header(tuple(shape), bool(fortran_order), dtype, stream.tell())


def to_frames(data: bytes, spec: ArraySpec) -> tuple[np.ndarray, dict]:
    """The array in ``data`` as float16 ``[frames, n_mels]`` (C order) and a description of
    the source (dtype, shape, orientation) for the member's sidecar.

    Refused: not a ``.npy``; object or structured dtypes (pickles are never loaded); data
    shorter or longer than the header declares; not 2-D; a band count other than the
    profile's; no frames, fewer than ``min_frames`` or more than ``max_frames``; NaN or
    infinite values; values outside float16's range (±65 504).
    """
    header = read_header(data)
    dtype = header.dtype
    if dtype.hasobject:
        raise ArrayError("parse", "pickled .npy (object dtype) is refused and never loaded")
    if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
        raise ArrayError("parse", f"dtype {dtype.str} is not a real number type")
    expected = math.prod(header.shape) * dtype.itemsize
    available = len(data) - header.data_offset
    if available < expected:
        raise ArrayError("parse", f"truncated: {available} of {expected} data bytes present")
    if available > expected:
        raise ArrayError(
            "parse", f"{available - expected} bytes after the array data (corrupt file)"
        )
    if len(header.shape) != 2:
        raise ArrayError(
            "validate", f"{len(header.shape)} dimension(s), shape {header.shape}; expected 2 "
                        f"({spec.orientation.replace('-', ', ')})"
        )  # fmt: skip
    bands_axis = 0 if spec.orientation == "bands-frames" else 1
    bands, frames = header.shape[bands_axis], header.shape[1 - bands_axis]
    if bands != spec.n_mels:
        raise ArrayError(
            "validate", f"{bands} bands (shape {header.shape}, {spec.orientation}); "
                        f"the profile has {spec.n_mels}"
        )  # fmt: skip
    if frames == 0:
        raise ArrayError("validate", f"zero frames (shape {header.shape})")
    if frames < spec.min_frames:
        raise ArrayError(
            "validate", f"too short: {frames} frames < {spec.min_frames} (one training crop)"
        )
    if frames > spec.max_frames:
        raise ArrayError("validate", f"too long: {frames} frames > {spec.max_frames}")
    array = np.frombuffer(data, dtype, count=math.prod(header.shape), offset=header.data_offset)
    array = array.reshape(header.shape, order="F" if header.fortran_order else "C")
    low, high = float(array.min()), float(array.max())  # NaN and inf propagate to these
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ArrayError("validate", f"{bad} non-finite value(s) (NaN/inf)")
    if max(-low, high) > FLOAT16_MAX:
        raise ArrayError(
            "validate", f"values in [{low:.6g}, {high:.6g}] exceed float16's range (±65504)"
        )
    time_major = array.T if bands_axis == 0 else array
    info = {"source_dtype": dtype.str, "source_shape": list(header.shape),
            "source_orientation": spec.orientation}  # fmt: skip
    return time_major.astype(np.float16, order="C"), info
