"""What ``duet doctor`` reports: duet's and Python's versions, the ffmpeg in use (and where it
comes from), libsndfile, and the versions of the libraries duet runs on."""

from __future__ import annotations

import sys
from importlib import metadata

from duet import __version__

LIBRARIES = ("apache-beam", "numpy", "pyarrow", "soxr", "soundfile", "scipy", "torch", "librosa",
             "webdataset")  # fmt: skip


def version(dist: str) -> str:
    """The installed version of a distribution, or ``not installed``."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> tuple[list[tuple[str, str]], bool]:
    """(name, value) rows, and whether duet can run (False when no ffmpeg is found)."""
    from duet.ffmpeg import FfmpegNotFound, ffmpeg_binary, ffmpeg_version

    rows = [("duet", __version__), ("python", sys.version.split()[0])]
    try:
        path, source = ffmpeg_binary()
        rows += [("ffmpeg", ffmpeg_version()), ("ffmpeg path", f"{path} (from {source})")]
        import soundfile

        rows.append(("libsndfile", soundfile.__libsndfile_version__))
        ok = True
    except FfmpegNotFound as exc:
        rows.append(("ffmpeg", f"MISSING: {exc}"))
        ok = False
    rows += [(dist, version(dist)) for dist in LIBRARIES]
    return rows, ok
