"""Manifest reading: formats, relative paths, globs, and every kind of bad row."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duet.pipelines.audio.manifest import read_manifest
from duet.schemas import track_id_problem


def test_parquet_manifest_resolves_relative_uris_against_its_folder(tmp_path):
    pq.write_table(
        pa.table({"track_id": ["a", "b"], "audio_uri": ["x/a.mp3", "/abs/b.mp3"]}),
        tmp_path / "m.parquet",
    )
    m = read_manifest(str(tmp_path / "m.parquet"))
    assert [(r.track_id, r.audio_uri) for r in m.rows] == [
        ("a", str(tmp_path / "x/a.mp3")),
        ("b", "/abs/b.mp3"),
    ]
    assert m.failures == [] and m.input_rows == 2


def test_csv_manifest_keeps_numeric_looking_ids_as_strings(tmp_path):
    (tmp_path / "m.csv").write_text("track_id,audio_uri,split\n007,a.wav,train\n8,b.wav,test\n")
    m = read_manifest(str(tmp_path / "m.csv"))
    assert [(r.track_id, r.split) for r in m.rows] == [("007", "train"), ("8", "test")]


def test_malformed_jsonl_line_lands_in_failures_and_the_rest_is_read(tmp_path):
    lines = [json.dumps({"track_id": "a", "audio_uri": "a.wav"}), "{not json", "[1, 2]",
             json.dumps({"track_id": "b", "audio_uri": "b.wav"})]  # fmt: skip
    (tmp_path / "m.jsonl").write_text("\n".join(lines))
    m = read_manifest(str(tmp_path / "m.jsonl"))
    assert [r.track_id for r in m.rows] == ["a", "b"]
    assert [f["error"][:25] for f in m.failures] == [
        "line 2: malformed JSON: E",
        "line 3: malformed JSON: e",
    ]
    assert all(f["stage"] == "manifest" for f in m.failures)


def test_duplicate_track_ids_fail_every_occurrence(tmp_path):
    rows = [{"track_id": "dup", "audio_uri": "1.wav"}, {"track_id": "ok", "audio_uri": "2.wav"},
            {"track_id": "dup", "audio_uri": "3.wav"}]  # fmt: skip
    (tmp_path / "m.jsonl").write_text("\n".join(map(json.dumps, rows)))
    m = read_manifest(str(tmp_path / "m.jsonl"))
    assert [r.track_id for r in m.rows] == ["ok"]
    assert [f["error"] for f in m.failures] == ["duplicate track_id in manifest rows 0, 2"] * 2


@pytest.mark.parametrize(
    ("track_id", "problem"),
    [
        ("../x", None),
        ("名前/曲 🎵", None),
        ("a\x00b", "control characters"),
        ("x" * 10_000, "10000 bytes long"),
        ("", "empty"),
        (42, "must be a string"),
        ("\ud800", "not valid unicode"),
    ],
)
def test_track_id_rules(track_id, problem):
    found = track_id_problem(track_id)
    assert (found is None) if problem is None else (problem in found)


def test_hostile_rows_become_failures_with_their_full_ids(tmp_path):
    rows = [{"track_id": "x" * 10_000, "audio_uri": "a.wav"}, {"track_id": "a\x00", "audio_uri": "b.wav"},
            {"track_id": "c"}, {"track_id": "d", "audio_uri": "d.wav", "split": "holdout"}]  # fmt: skip
    (tmp_path / "m.jsonl").write_text("\n".join(map(json.dumps, rows)))
    m = read_manifest(str(tmp_path / "m.jsonl"))
    assert m.rows == []
    assert len(m.failures) == 4
    assert [f["track_id"] for f in m.failures[:2]] == ["x" * 10_000, "a\x00"]
    assert "audio_uri is missing" in m.failures[2]["error"]
    assert "split must be train, val or test" in m.failures[3]["error"]


def test_glob_ids_are_paths_relative_to_the_fixed_prefix(tmp_path):
    for name in ("rock/a.mp3", "jazz/deep/b.flac", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    m = read_manifest(str(tmp_path) + "/**/*.*[3c]")
    assert sorted(r.track_id for r in m.rows) == ["jazz/deep/b.flac", "rock/a.mp3"]


def test_missing_required_column_is_a_clear_error(tmp_path):
    pq.write_table(pa.table({"id": ["a"]}), tmp_path / "m.parquet")
    with pytest.raises(ValueError, match="no column.*audio_uri"):
        read_manifest(str(tmp_path / "m.parquet"))


def test_unknown_manifest_format_is_a_clear_error(tmp_path):
    (tmp_path / "m.xlsx").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown manifest format"):
        read_manifest(str(tmp_path / "m.xlsx"))
