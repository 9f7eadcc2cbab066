"""One id rule and one order rule for every table reader, whatever the Arrow types a tool wrote:
integer ids read as the strings the CSV reader makes (playlists, manifests, labels, splits), and
a playlist's entries sorted by a position of any numeric type, unpositioned entries after the
positioned ones in input order (files in path order, rows in file order)."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duet import schemas
from duet.cli import main
from duet.pipelines.audio.manifest import read_manifest
from duet.training.evaluate import read_labels
from tests.support.helpers import cli_error

ROWS = [(p, t) for p in (7, 8, 9, 10) for t in range(p, p + 3)]
"""4 playlists of 3 tracks, ids written as numbers."""


def publish(tmp_path, inputs: list[str], name: str = "out") -> tuple[dict, dict]:
    """``duet playlists --format table`` → (playlist id → tracks, the summary's counts)."""
    out = str(tmp_path / name)
    assert main(["playlists", "--input", *inputs, "--format", "table", "--output", out]) == 0
    table = schemas.read_table(os.path.join(out, "playlists.parquet"), schemas.PLAYLISTS)
    with open(os.path.join(out, "playlists.parquet", "_SUCCESS")) as f:
        counts = json.load(f)["counts"]
    return {r["playlist_id"]: r["track_ids"] for r in table.to_pylist()}, counts


def test_a_parquet_table_with_int64_ids_publishes_what_the_same_rows_as_csv_publish(tmp_path):
    pq.write_table(pa.table({"playlist_id": pa.array([p for p, _ in ROWS], pa.int64()),
                             "track_id": pa.array([t for _, t in ROWS], pa.int64())}),
                   tmp_path / "ints.parquet")  # fmt: skip
    (tmp_path / "rows.csv").write_text(
        "playlist_id,track_id\n" + "".join(f"{p},{t}\n" for p, t in ROWS)
    )
    from_parquet, counts = publish(tmp_path, [str(tmp_path / "ints.parquet")], "parquet")
    from_csv, _ = publish(tmp_path, [str(tmp_path / "rows.csv")], "csv")
    assert from_parquet == from_csv == {"7": ["7", "8", "9"], "8": ["8", "9", "10"],
                                        "9": ["9", "10", "11"], "10": ["10", "11", "12"]}  # fmt: skip
    assert (counts["playlists"], counts["entries"]) == (4, 12)


@pytest.mark.parametrize("kind", [pa.uint16(), pa.int32(), pa.dictionary(pa.int8(), pa.string())])
def test_ids_of_any_integer_or_dictionary_type_are_read(tmp_path, kind):
    values = [1, 1, 2, 2] if not pa.types.is_dictionary(kind) else ["1", "1", "2", "2"]
    ids = pa.array(values, kind.value_type if pa.types.is_dictionary(kind) else kind)
    ids = ids.dictionary_encode() if pa.types.is_dictionary(kind) else ids
    pq.write_table(pa.table({"playlist_id": ids, "track_id": ids.take([0, 2, 1, 3])}),
                   tmp_path / "t.parquet")  # fmt: skip
    playlists, _ = publish(tmp_path, [str(tmp_path / "t.parquet")])
    assert playlists == {"1": ["1", "2"], "2": ["1", "2"]}


def test_float64_positions_with_a_missing_value_order_the_playlist(tmp_path):
    # what pandas writes once a pos is missing: float64, NaN for the gap
    table = pa.table({"playlist_id": ["p"] * 4 + ["q"] * 2,
                      "track_id": ["t2", "t0", "t3", "t1", "a", "b"],
                      "pos": pa.array([2.0, 0.0, 3.0, 1.0, float("nan"), 0.0])})  # fmt: skip
    pq.write_table(table, tmp_path / "pandas.parquet")
    playlists, counts = publish(tmp_path, [str(tmp_path / "pandas.parquet")])
    assert playlists == {"p": ["t0", "t1", "t2", "t3"], "q": ["b", "a"]}
    assert counts["entries_without_pos"] == 1


def test_entries_without_a_position_follow_the_positioned_ones_in_row_order(tmp_path):
    table = pa.table({"playlist_id": ["p"] * 5, "track_id": ["a", "b", "c", "d", "e"],
                      "pos": pa.array([None, 10, None, 5, None], pa.int32())})  # fmt: skip
    pq.write_table(table, tmp_path / "gaps.parquet")
    playlists, counts = publish(tmp_path, [str(tmp_path / "gaps.parquet")])
    assert playlists == {"p": ["d", "b", "a", "c", "e"]}
    assert counts["entries_without_pos"] == 3 and counts["entries_read"] == 5


def test_rows_of_one_playlist_in_several_files_without_pos_follow_path_then_row_order(tmp_path):
    # b.csv is named first on the command line, a.csv comes first in path order
    (tmp_path / "b.csv").write_text("playlist_id,track_id\np,x1\np,x2\nq,z1\n")
    (tmp_path / "a.csv").write_text("playlist_id,track_id\np,y2\nq,z2\np,y1\n")
    playlists, counts = publish(tmp_path, [str(tmp_path / "b.csv"), str(tmp_path / "a.csv")])
    assert playlists == {"p": ["y2", "y1", "x1", "x2"], "q": ["z2", "z1"]}
    assert counts["entries_without_pos"] == 6


def test_equal_positions_keep_the_input_order_across_files(tmp_path):
    (tmp_path / "1.csv").write_text("playlist_id,track_id,pos\np,zz,0\np,mm,1\n")
    (tmp_path / "2.csv").write_text("playlist_id,track_id,pos\np,aa,0\np,bb,\n")
    playlists, counts = publish(tmp_path, [str(tmp_path)])
    assert playlists == {"p": ["zz", "aa", "mm", "bb"]}
    assert counts["entries_without_pos"] == 1


def test_a_pos_column_that_is_not_numeric_is_reported_not_guessed(tmp_path, capsys):
    pq.write_table(pa.table({"playlist_id": ["p", "p"], "track_id": ["a", "b"],
                             "pos": ["1", "0"]}), tmp_path / "text.parquet")  # fmt: skip
    out = tmp_path / "out"
    error = cli_error(capsys, ["playlists", "--input", str(tmp_path / "text.parquet"),
                               "--format", "table", "--output", str(out)])  # fmt: skip
    assert "column 'pos' has type string; positions must be numbers" in error
    assert not (out / "playlists.parquet" / "_SUCCESS").exists()


def test_mpd_positions_follow_the_same_rule(tmp_path):
    tracks = [{"pos": 1.0, "track_uri": "b"}, {"track_uri": "c"}, {"pos": 0, "track_uri": "a"}]
    (tmp_path / "mpd.slice.0-0.json").write_text(
        json.dumps({"playlists": [{"pid": 1, "tracks": tracks}]})
    )
    out = str(tmp_path / "out")
    assert main(["playlists", "--input", str(tmp_path), "--format", "mpd", "--output", out]) == 0
    table = schemas.read_table(os.path.join(out, "playlists.parquet"), schemas.PLAYLISTS)
    assert table.column("track_ids").to_pylist() == [["a", "b", "c"]]


def test_a_manifest_with_int64_track_ids_reads_them_as_csv_would(tmp_path):
    pq.write_table(pa.table({"track_id": pa.array([7, 8], pa.int64()),
                             "audio_uri": ["a.wav", "b.wav"]}), tmp_path / "m.parquet")  # fmt: skip
    (tmp_path / "m.jsonl").write_text(
        "\n".join(json.dumps({"track_id": t, "audio_uri": f"{t}.wav"}) for t in (7, 8))
    )
    for name in ("m.parquet", "m.jsonl"):
        manifest = read_manifest(str(tmp_path / name))
        assert [r.track_id for r in manifest.rows] == ["7", "8"] and not manifest.failures


def test_labels_with_int64_track_ids_are_keyed_by_the_csv_strings(tmp_path):
    pq.write_table(pa.table({"track_id": pa.array([7, 8], pa.int64()), "genre": ["rock", "jazz"]}),
                   tmp_path / "labels.parquet")  # fmt: skip
    assert read_labels(str(tmp_path / "labels.parquet"), "genre", False) == {
        "7": "rock",
        "8": "jazz",
    }


def test_a_splits_table_with_integer_ids_is_read_and_float_ids_are_refused(tmp_path):
    pq.write_table(pa.table({"track_id": pa.array([7, 8], pa.uint32()), "split": ["train", "test"]}),
                   tmp_path / "splits.parquet")  # fmt: skip
    table = schemas.read_table(str(tmp_path / "splits.parquet"), schemas.SPLITS)
    assert table.column("track_id").to_pylist() == ["7", "8"]
    pq.write_table(pa.table({"track_id": [7.0, 8.0], "split": ["train", "test"]}),
                   tmp_path / "floats.parquet")  # fmt: skip
    with pytest.raises(schemas.SchemaError, match="expected strings"):
        schemas.read_table(str(tmp_path / "floats.parquet"), schemas.SPLITS)


def test_a_csv_id_table_given_as_tracks_keeps_leading_zeros(tmp_path):
    from duet.pipelines.playlists.steps import audio_ids

    path = tmp_path / "ids.csv"
    path.write_text("track_id,spotify_uri\n0001,spotify:track:a\n0010,spotify:track:b\n")
    keys, ids = audio_ids(str(path), "spotify_uri")
    assert keys.to_pylist() == ["spotify:track:a", "spotify:track:b"]
    assert ids.to_pylist() == ["0001", "0010"]
