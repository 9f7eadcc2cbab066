"""A deterministic tar writer that reports where each member's data lands.

Members are plain ustar entries with fixed metadata (mtime 0, uid/gid 0, mode 0444), so the
same members in the same order give byte-identical archives, readable by ``tarfile`` and
WebDataset. ``add`` returns the byte offset of the member's data: a reader fetches a member
with a single ranged read of ``[offset, offset + size)``.
"""

from __future__ import annotations

import tarfile

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


class TarWriter:
    def __init__(self, stream):
        self._stream = stream
        self.position = 0
        self.count = 0

    def _write(self, data: bytes | memoryview) -> None:
        self._stream.write(data)
        self.position += len(data)

    def add(self, name: str, data: bytes) -> int:
        """Append one member; return the offset of its data within the archive."""
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o444
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._write(info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict"))
        offset = self.position
        self._write(data)
        remainder = len(data) % BLOCK
        if remainder:
            self._write(b"\0" * (BLOCK - remainder))
        self.count += 1
        return offset

    def close(self) -> None:
        """Write the end-of-archive blocks and pad to a whole record, as ``tarfile`` does."""
        self._write(b"\0" * (2 * BLOCK))
        remainder = self.position % RECORD
        if remainder:
            self._write(b"\0" * (RECORD - remainder))
        self._stream.close()
