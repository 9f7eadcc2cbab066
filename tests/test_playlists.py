"""``duet playlists``: MPD, Melon and table inputs, audio mapping, and every kind of bad input."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duet import publish, schemas
from duet.pipelines.beam_io import make_pipeline
from duet.pipelines.playlists import job as pl
from tests.support.helpers import listed_names


def mpd_slice(playlists: list[dict]) -> dict:
    return {"info": {"slice": "0-999", "version": "v1"}, "playlists": playlists}


def mpd_playlist(pid, uris, *, collaborative="false", artist=True, **extra) -> dict:
    tracks = []
    for pos, uri in enumerate(uris):
        entry = {"pos": pos, "track_uri": uri, "artist_name": f"Name {uri}", "track_name": "x",
                 "duration_ms": 1000, "album_uri": "a", "album_name": "b"}  # fmt: skip
        if artist:
            entry["artist_uri"] = f"artist:{uri}"
        tracks.append(entry)
    return {"pid": pid, "name": "ünïcode ♫ name", "collaborative": collaborative,
            "num_tracks": len(tracks), "tracks": tracks, **extra}  # fmt: skip


def write_json(path, data, gz: bool = False) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    raw = json.dumps(data).encode()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if gz else raw)
    return str(path)


def run(tmp_path, inputs, fmt, **kwargs) -> dict:
    out = str(tmp_path / "out")
    job = pl.PlaylistsJob(inputs=tuple(str(i) for i in inputs), format=fmt, output=out, **kwargs)
    pipeline = make_pipeline([])
    pl.build(pipeline, job)
    pipeline.run().wait_until_finish()
    body = publish.require_success(os.path.join(out, "playlists.parquet"))
    return {
        "body": body,
        "playlists": {r["playlist_id"]: r["track_ids"] for r in
                      schemas.read_table(os.path.join(out, "playlists.parquet"), schemas.PLAYLISTS).to_pylist()},
        "meta": {r["track_id"]: r for r in
                 schemas.read_table(os.path.join(out, "track_meta.parquet"), schemas.TRACK_META).to_pylist()},
        "dropped": {r.pop("reason"): r for r in
                    schemas.read_table(os.path.join(out, "playlists_dropped.parquet"), schemas.PLAYLIST_DROPS).to_pylist()},
        "failures": schemas.read_table(os.path.join(out, "playlists_failures.parquet"), schemas.SOURCE_FAILURES).to_pylist(),
    }  # fmt: skip


def test_mpd_slices_plain_and_gzipped_become_ordered_playlists(tmp_path):
    write_json(
        tmp_path / "mpd" / "mpd.slice.0-999.json",
        mpd_slice([mpd_playlist(0, ["u:1", "u:2", "u:3"])]),
    )
    write_json(tmp_path / "mpd" / "mpd.slice.1000-1999.json.gz",
               mpd_slice([mpd_playlist(1000, ["u:3", "u:1"], collaborative=True)]), gz=True)  # fmt: skip
    result = run(tmp_path, [tmp_path / "mpd"], "mpd")
    assert result["playlists"] == {"0": ["u:1", "u:2", "u:3"], "1000": ["u:3", "u:1"]}
    assert result["meta"]["u:1"]["artist_ids"] == ["artist:u:1"]
    assert result["body"]["counts"]["playlists"] == 2 and result["failures"] == []


def test_mpd_artist_falls_back_to_the_name_and_pos_to_the_order(tmp_path):
    item = mpd_playlist(5, ["u:1", "u:2"], artist=False)
    for entry in item["tracks"]:
        del entry["pos"]
    del item["collaborative"], item["name"]
    write_json(tmp_path / "s.json", mpd_slice([item]))
    result = run(tmp_path, [tmp_path / "s.json"], "mpd")
    assert result["playlists"] == {"5": ["u:1", "u:2"]}
    assert result["meta"]["u:2"]["artist_ids"] == ["Name u:2"]


def test_one_malformed_slice_is_a_failure_and_the_others_are_read(tmp_path):
    write_json(tmp_path / "mpd" / "mpd.slice.0-999.json", mpd_slice([mpd_playlist(0, ["a", "b"])]))
    (tmp_path / "mpd" / "mpd.slice.1000-1999.json").write_text(
        '{"playlists": [{"pid": 1, "tracks": ['
    )
    result = run(tmp_path, [tmp_path / "mpd"], "mpd")
    assert result["playlists"] == {"0": ["a", "b"]}
    [failure] = result["failures"]
    assert failure["source"].endswith("mpd.slice.1000-1999.json")
    assert "JSONDecodeError" in failure["error"]
    assert result["dropped"]["unreadable_file"] == {"entries": 0, "tracks": 0, "playlists": 0}


def test_bad_records_are_counted_by_reason(tmp_path):
    playlists = [
        mpd_playlist(0, ["a", "b", "a", "c"]),  # a repeated: counts once
        mpd_playlist(1, []),  # empty
        mpd_playlist(2, ["a"]),  # under two tracks
        mpd_playlist(3, ["a", 17, None, "b\x00x", "y" * 2000, "../../etc/passwd", "b"]),
        {"name": "no pid", "tracks": []},
    ]
    write_json(tmp_path / "s.json", mpd_slice(playlists))
    result = run(tmp_path, [tmp_path / "s.json"], "mpd")
    assert result["playlists"] == {"0": ["a", "b", "c"], "3": ["a", "17", "../../etc/passwd", "b"]}
    dropped = result["dropped"]
    assert dropped["repeated_in_playlist"]["entries"] == 1
    assert dropped["empty_playlist"]["playlists"] == 1
    assert dropped["under_two_tracks"] == {"entries": 1, "tracks": 0, "playlists": 1}
    assert dropped["invalid_track_id"]["entries"] == 3  # an integer id is an id: "17"
    assert dropped["invalid_record"]["playlists"] == 1
    errors = " | ".join(f["error"] for f in result["failures"])
    assert (
        "must be a string or an integer, got NoneType" in errors
        and "control characters" in errors
        and "bytes long" in errors
    )


def test_a_playlist_id_used_twice_keeps_the_first_record(tmp_path):
    write_json(tmp_path / "mpd" / "a.json", mpd_slice([mpd_playlist(7, ["a", "b"])]))
    write_json(tmp_path / "mpd" / "b.json", mpd_slice([mpd_playlist(7, ["c", "d", "e"])]))
    result = run(tmp_path, [tmp_path / "mpd"], "mpd")
    assert result["playlists"] == {"7": ["a", "b"]}
    assert result["dropped"]["duplicate_playlist_id"] == {"entries": 3, "tracks": 0, "playlists": 1}


def test_a_100k_track_playlist_is_kept_whole(tmp_path):
    uris = [f"spotify:track:{i:022d}" for i in range(100_000)]
    write_json(tmp_path / "s.json", mpd_slice([mpd_playlist(0, uris)]))
    result = run(tmp_path, [tmp_path / "s.json"], "mpd")
    assert result["playlists"]["0"] == uris


def test_melon_playlists_and_song_meta(tmp_path):
    folder = tmp_path / "melon"
    write_json(folder / "train.json", [{"id": 10, "songs": [1, 2, 3], "tags": ["x"]}])
    write_json(folder / "val.json", [{"id": 11, "songs": [3, 1], "tags": []}])
    write_json(folder / "song_meta.json", [
        {"id": 1, "artist_id_basket": [100], "song_gn_gnr_basket": ["GN0100"],
         "song_gn_dtl_gnr_basket": ["GN0101", "GN0102"]},
        {"id": 2, "artist_id_basket": [100, 200], "song_gn_gnr_basket": ["GN0200"],
         "song_gn_dtl_gnr_basket": []},
    ])  # fmt: skip
    result = run(tmp_path, [folder], "melon")
    assert result["playlists"] == {"10": ["1", "2", "3"], "11": ["3", "1"]}
    assert result["meta"]["1"] == {
        "track_id": "1",
        "artist_ids": ["100"],
        "genres": ["GN0101", "GN0102"],
    }
    assert result["meta"]["2"]["artist_ids"] == ["100", "200"]
    both = run(tmp_path, [folder], "melon", melon_genres="both")
    assert both["meta"]["1"]["genres"] == ["GN0100", "GN0101", "GN0102"]


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_plain_tables_group_rows_across_files_by_playlist(tmp_path, kind):
    rows = [{"playlist_id": "p1", "track_id": "b", "pos": 1}, {"playlist_id": "p1", "track_id": "a", "pos": 0},
            {"playlist_id": "p2", "track_id": "c", "pos": 0}]  # fmt: skip
    more = [{"playlist_id": "p2", "track_id": "d", "pos": 1}]
    for name, part in (("one", rows), ("two", more)):
        path = tmp_path / "tables" / f"{name}.{kind}"
        os.makedirs(path.parent, exist_ok=True)
        table = pa.Table.from_pylist(part)
        if kind == "parquet":
            pq.write_table(table, path)
        elif kind == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, path)
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in part))
    result = run(tmp_path, [tmp_path / "tables"], "table")
    assert result["playlists"] == {"p1": ["a", "b"], "p2": ["c", "d"]}


def test_mapping_to_a_manifest_keeps_tracks_with_audio_and_counts_the_rest(tmp_path):
    manifest = pa.table({"track_id": ["audio-1", "audio-2", "audio-3"], "audio_uri": ["x", "y", "z"],
                         "uri": ["u:1", "u:2", "u:3"]})  # fmt: skip
    pq.write_table(manifest, tmp_path / "tracks.parquet")
    write_json(tmp_path / "s.json", mpd_slice([mpd_playlist(0, ["u:1", "u:2", "u:9", "u:8"]),
                                               mpd_playlist(1, ["u:3", "u:9"])]))  # fmt: skip
    result = run(
        tmp_path,
        [tmp_path / "s.json"],
        "mpd",
        tracks=str(tmp_path / "tracks.parquet"),
        track_key="uri",
    )
    assert result["playlists"] == {"0": ["audio-1", "audio-2"]}
    assert set(result["meta"]) == {"audio-1", "audio-2", "audio-3"}
    assert result["dropped"]["no_audio"] == {"entries": 3, "tracks": 2, "playlists": 0}
    assert result["dropped"]["under_two_tracks"]["playlists"] == 1


def test_rerun_is_identical_and_fewer_parts_leave_no_stale_files(tmp_path):
    write_json(
        tmp_path / "s.json", mpd_slice([mpd_playlist(i, ["a", "b", f"c{i}"]) for i in range(40)])
    )
    first = run(tmp_path, [tmp_path / "s.json"], "mpd", parts=3)
    snapshot = {n: (tmp_path / "out" / "playlists.parquet" / n).read_bytes()
                for n in os.listdir(tmp_path / "out" / "playlists.parquet")}  # fmt: skip
    again = run(tmp_path, [tmp_path / "s.json"], "mpd", parts=3)
    assert again["playlists"] == first["playlists"]
    assert {
        n: (tmp_path / "out" / "playlists.parquet" / n).read_bytes() for n in snapshot
    } == snapshot
    run(tmp_path, [tmp_path / "s.json"], "mpd", parts=1)
    assert listed_names(str(tmp_path / "out" / "playlists.parquet")) == [
        "_SUCCESS",
        "part-00000.parquet",
    ]


def test_missing_input_is_a_precise_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "duet.cli", "playlists", "--input", str(tmp_path / "nope"),
                           "--format", "mpd", "--output", str(tmp_path / "out")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "matches no mpd input file" in proc.stderr


def test_cli_on_the_sample_catalogue_maps_to_the_published_audio(catalog, published, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "duet.cli", "playlists", "--input",
                           os.path.join(catalog, "mpd"), "--format", "mpd", "--output", str(tmp_path),
                           "--tracks", published], capture_output=True, text=True, check=True)  # fmt: skip
    assert "no_audio" in proc.stdout  # the broken files of the catalogue have no audio
    table = schemas.read_table(str(tmp_path / "playlists.parquet"), schemas.PLAYLISTS)
    indexed = set(
        schemas.read_table(os.path.join(published, "index"), schemas.AUDIO_INDEX)
        .column("track_id")
        .to_pylist()
    )
    assert table.num_rows > 10
    assert {t for ids in table.column("track_ids").to_pylist() for t in ids} <= indexed
