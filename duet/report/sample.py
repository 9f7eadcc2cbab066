"""Reading published tables for the report without scanning them: column subsets, and at most
a budget of rows chosen as whole Parquet row groups in a seeded random order.

A published table's files are exactly those its folder's ``_SUCCESS`` lists
(:func:`table_files`); a file a run left beside them is never read. Row-group sizes come from
each part's footer (two small ranged reads on object stores), so the
total is always exact even when only a sample is read. Locally the chosen row groups are read
natively; on object stores each part that holds one is fetched whole (parts are what the jobs
write, at most a few hundred MB each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from duet import publish, schemas, storage
from duet.hashing import derive_seed


def table_files(uri: str, by_marker: bool = True) -> list[str]:
    """The files of the table at ``uri``: those its folder's ``_SUCCESS`` lists (NotPublished
    when it has none), or with ``by_marker=False`` (a file named already: one a marker lists,
    a user's manifest, a job's side file) its Parquet parts by name."""
    if not by_marker:
        return schemas.table_parts(uri)
    return publish.table_uris(uri, "the command that makes it")


@dataclass(frozen=True)
class Sample:
    """``table`` holds ``rows`` of the ``total`` rows of the table (all of them when ``exact``)."""

    table: pa.Table
    rows: int
    total: int

    @property
    def exact(self) -> bool:
        return self.rows == self.total

    def describe(self, unit: str = "rows") -> str:
        """ "all 1,234 rows" or "a sample of 50,000 of 1,234,567 rows (4.1 %)"."""
        if self.exact:
            return f"all {self.total:,} {unit}"
        share = 100 * self.rows / self.total if self.total else 0.0
        return f"a sample of {self.rows:,} of {self.total:,} {unit} ({share:.1f} %)"


def footer(uri: str) -> pq.FileMetaData:
    """The Parquet footer of one file; on object stores by two ranged reads."""
    if not storage.is_remote(uri):
        return pq.read_metadata(storage.local_path(uri))
    size = storage.file_size_and_mtime(uri)[0]
    length = int.from_bytes(storage.read_range(uri, size - 8, 4), "little")
    tail = storage.read_range(uri, size - 8 - length, length + 8)
    return pq.read_metadata(pa.BufferReader(b"PAR1" + tail))


def parquet_file(uri: str) -> pq.ParquetFile:
    if not storage.is_remote(uri):
        return pq.ParquetFile(storage.local_path(uri))
    return pq.ParquetFile(schemas.arrow_reader(storage.read_bytes(uri)))


def _subset(schema: pa.Schema, columns: list[str]) -> pa.Schema:
    return pa.schema([schema.field(c) for c in columns])


def read_sample(uri: str, schema: pa.Schema, columns: list[str], max_rows: int,
                seed: int = 0, *, by_marker: bool = True) -> Sample:  # fmt: skip
    """Columns ``columns`` of the table at ``uri`` (a file or a folder of parts), validated
    against ``schema``: every row when the table has at most ``max_rows``, else whole row
    groups drawn without replacement (seeded by ``seed`` and the table's name) until
    ``max_rows`` are read, returned in file order."""
    groups = []
    for part in table_files(uri, by_marker):
        meta = footer(part)
        groups += [(part, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
    total = sum(n for _, _, n in groups)
    chosen = groups
    if total > max_rows:
        rng = np.random.default_rng(derive_seed(seed, "report-sample", uri.rsplit("/", 1)[-1]))
        chosen, taken = [], 0
        for i in rng.permutation(len(groups)):
            chosen.append(groups[i])
            taken += groups[i][2]
            if taken >= max_rows:
                break
        chosen.sort(key=lambda g: (g[0], g[1]))
    subset = _subset(schema, columns)
    tables = []
    for part in dict.fromkeys(p for p, _, _ in chosen):
        wanted = [g for p, g, _ in chosen if p == part]
        table = parquet_file(part).read_row_groups(wanted, columns=columns)
        tables.append(schemas.conform(table, subset, what=part))
    table = pa.concat_tables(tables) if tables else subset.empty_table()
    return Sample(table, table.num_rows, total)


def read_all(uri: str, schema: pa.Schema, columns: list[str], *,
             by_marker: bool = True) -> pa.Table:  # fmt: skip
    """Every row of ``columns`` (for tables that are small by construction)."""
    tables = [schemas.conform(parquet_file(p).read(columns=columns), _subset(schema, columns),
                              what=p) for p in table_files(uri, by_marker)]  # fmt: skip
    return pa.concat_tables(tables) if tables else _subset(schema, columns).empty_table()


def column_names(uri: str, by_marker: bool = True) -> list[str]:
    """The columns a table was written with (tables from older code may lack new ones)."""
    parts = table_files(uri, by_marker)
    return footer(parts[0]).schema.to_arrow_schema().names if parts else []


def pick(items: list, count: int, seed: int, *salt: object) -> list:
    """``count`` items drawn without replacement (seeded), in their original order."""
    if len(items) <= count:
        return list(items)
    rng = np.random.default_rng(derive_seed(seed, "report-pick", *salt))
    return [items[i] for i in sorted(rng.choice(len(items), count, replace=False))]


def read_ids(uri: str, schema: pa.Schema, columns: list[str], ids: list[str],
             id_column: str = "track_id", *, by_marker: bool = True) -> pa.Table:  # fmt: skip
    """The rows whose ``id_column`` is one of ``ids``. Row groups whose min/max statistics
    exclude every id are skipped, so a table sorted by id (top-K, vectors) costs a few row
    groups; an unsorted one is read whole (its ``columns`` only)."""
    import pyarrow.compute as pc

    wanted = pa.array(sorted(set(ids)), pa.string())
    subset = _subset(schema, list(dict.fromkeys([id_column, *columns])))
    tables = []
    for part in table_files(uri, by_marker):
        meta = footer(part)
        index = meta.schema.to_arrow_schema().get_field_index(id_column)
        groups = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(index).statistics
            if stats is not None and stats.has_min_max and len(wanted):
                lo, hi = stats.min, stats.max
                lo = lo.decode() if isinstance(lo, bytes) else lo
                hi = hi.decode() if isinstance(hi, bytes) else hi
                if not any(lo <= i <= hi for i in wanted.to_pylist()):
                    continue
            groups.append(g)
        if not groups:
            continue
        table = parquet_file(part).read_row_groups(groups, columns=subset.names)
        table = table.filter(pc.is_in(table.column(id_column), value_set=wanted))
        tables.append(schemas.conform(table, subset, what=part))
    return pa.concat_tables(tables) if tables else subset.empty_table()
