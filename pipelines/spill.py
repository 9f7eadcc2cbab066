"""Partitioned spill files on local disk: what replaces a GroupByKey over P parts when a job runs
on one machine without Beam's in-memory shuffle.

Every unit of work writes, per tag, one Arrow IPC file holding exactly P record batches
(batch p = the unit's rows of part p, often empty), LZ4-compressed. Reading part p opens each
unit's file and decodes only its batch p, so memory holds one part at a time, never the
dataset, and the result does not depend on which worker wrote which file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


class PartSpill:
    """``folder``/<tag>/<name>.arrow files of ``parts`` batches each."""

    def __init__(self, folder: str, parts: int):
        self.folder, self.parts = folder, parts

    def write(self, name: str, tag: str, table: pa.Table, part: np.ndarray) -> int:
        """Spill ``table`` (row i belongs to part ``part[i]``) as unit ``name``; returns the
        file's size in bytes."""
        os.makedirs(os.path.join(self.folder, tag), exist_ok=True)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(self.parts + 1))
        table = table.take(pa.array(order)).combine_chunks()
        batch = table.to_batches()[0] if table.num_rows else None
        path = os.path.join(self.folder, tag, f"{name}.arrow")
        with pa.ipc.new_file(path, table.schema, options=_OPTIONS) as writer:
            for p in range(self.parts):
                if batch is None or bounds[p] == bounds[p + 1]:
                    writer.write_batch(pa.RecordBatch.from_pylist([], schema=table.schema))
                else:
                    writer.write_batch(batch.slice(bounds[p], bounds[p + 1] - bounds[p]))
        return os.path.getsize(path)

    def read(self, part: int, tag: str) -> Iterator[pa.Table]:
        """Every unit's rows of ``part`` under ``tag``, in unit-name order."""
        folder = os.path.join(self.folder, tag)
        if not os.path.isdir(folder):
            return
        for name in sorted(os.listdir(folder)):
            with pa.OSFile(os.path.join(folder, name), "rb") as f:
                batch = pa.ipc.open_file(f).get_batch(part)
            if batch.num_rows:
                yield pa.Table.from_batches([batch])
