"""Schemas are validated on write and on read."""

import pyarrow as pa
import pytest

from duet import schemas


def test_missing_required_column_is_refused(tmp_path):
    with pytest.raises(schemas.SchemaError, match="required column 'stage'"):
        schemas.write_table(
            pa.table({"track_id": ["a"], "error": ["x"]}),
            str(tmp_path / "f.parquet"),
            schemas.FAILURES,
        )


def test_nulls_in_required_column_are_refused():
    table = pa.table({"track_id": ["a"], "audio_uri": pa.array([None], pa.string())})
    with pytest.raises(schemas.SchemaError, match="'audio_uri' has 1 null"):
        schemas.conform(table, schemas.TRACK_MANIFEST)


def test_optional_columns_are_added_and_types_cast(tmp_path):
    path = str(tmp_path / "m.parquet")
    schemas.write_table(
        pa.table({"track_id": ["a"], "audio_uri": ["a.wav"]}), path, schemas.TRACK_MANIFEST
    )
    table = schemas.read_table(path, schemas.TRACK_MANIFEST)
    assert table.schema == schemas.TRACK_MANIFEST and table.column("genres").to_pylist() == [None]


def test_wrong_type_on_read_names_the_file_and_column(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"track_id": ["a"], "stage": [[1, 2]], "error": ["e"]}), path)
    with pytest.raises(schemas.SchemaError, match="column 'stage' has type list"):
        schemas.read_table(str(path), schemas.FAILURES)


def test_folder_of_parts_reads_as_one_table(tmp_path):
    for i in range(3):
        schemas.write_table(
            schemas.from_rows([{"track_id": f"t{i}", "stage": "decode", "error": "x"}], schemas.FAILURES),
            str(tmp_path / f"part-{i}.parquet"), schemas.FAILURES,
        )  # fmt: skip
    assert schemas.read_table(str(tmp_path), schemas.FAILURES).column("track_id").to_pylist() == [
        "t0",
        "t1",
        "t2",
    ]
