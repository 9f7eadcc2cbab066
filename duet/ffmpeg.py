"""Locate the ffmpeg binary: the one on PATH, else the one shipped in the imageio-ffmpeg wheel."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess


class FfmpegNotFound(RuntimeError):
    """Neither PATH nor the imageio-ffmpeg wheel provides an ffmpeg binary."""


@functools.cache
def ffmpeg_binary() -> tuple[str, str]:
    """Return (path, source) of the ffmpeg to use; source is 'env', 'PATH' or 'imageio-ffmpeg'.

    ``DUET_FFMPEG`` overrides the search (useful to pin a build on Dataflow workers).
    """
    override = os.environ.get("DUET_FFMPEG")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise FfmpegNotFound(f"DUET_FFMPEG={override!r} is not an executable file")
        return override, "env"
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path, "PATH"
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - imageio-ffmpeg is a hard dependency
        raise FfmpegNotFound("no ffmpeg on PATH and imageio-ffmpeg is not installed") from exc
    return imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg"


def ffmpeg_path() -> str:
    return ffmpeg_binary()[0]


@functools.cache
def ffmpeg_version() -> str:
    out = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-version"], capture_output=True, text=True, check=True
    ).stdout
    first = out.splitlines()[0] if out else "unknown"
    return first.removeprefix("ffmpeg version ").split(" Copyright")[0]
