"""``duet playlists`` without ``--runner``: the local runner (parts spilled to disk) writes the
Beam job's bytes, reads big tables in row-group units, shows progress, and never hangs."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from duet import publish, schemas
from duet.pipelines.beam_io import make_pipeline
from duet.pipelines.playlists import job as pl
from duet.pipelines.playlists import local, mpd, steps
from duet.pipelines.playlists import table as plain
from tests.support.helpers import tree


def entry(pos, uri, artist: str | None = "uri") -> dict:
    out = {"pos": pos, "track_uri": uri, "artist_name": f"Name {uri}", "track_name": "x"}
    if artist:
        out["artist_uri"] = f"artist:{uri}" if artist == "uri" else artist
    return out


def slice_bytes(playlists: list[dict]) -> bytes:
    return json.dumps({"info": {"slice": "0-999"}, "playlists": playlists}).encode()


def clean_playlists(first: int, n: int) -> list[dict]:
    return [{"pid": first + i, "name": "ünï ♫", "tracks": [entry(p, f"u:{(i * 7 + p * 3) % 40}",
             None if p % 4 == 0 else "uri") for p in range(i % 9)]} for i in range(n)]  # fmt: skip


DIRTY = [
    {"pid": 900, "tracks": [entry(0, "a"), entry(1, 17), entry(2, None), entry(3, "b\x00x"),
                            entry(4, "y" * 2000), entry(5, "../../etc/passwd"), entry(6, "")]},
    {"name": "no pid", "tracks": []},
    {"pid": 901, "tracks": None},
    {"pid": True, "tracks": [entry(0, "x")]},
    {"pid": "s-1", "tracks": [{"track_uri": "q1", "pos": 1.5}, 5, {"track_uri": "q2", "pos": True}]},
    *[{"pid": 903 + i, "tracks": [entry(0, None), entry(1, "z1"), entry(2, "z2")]} for i in range(25)],
]  # fmt: skip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, dict]:
    """Every format with clean and bad input; name → PlaylistsJob keyword arguments."""
    root = tmp_path_factory.mktemp("inputs")
    (root / "mpd").mkdir()
    for s in range(4):
        playlists = clean_playlists(s * 30 - 3 * s, 30)  # ids overlap between slices
        (root / "mpd" / f"mpd.slice.{s}.json").write_bytes(slice_bytes(playlists))
    (root / "mpd" / "mpd.slice.4.json.gz").write_bytes(
        gzip.compress(slice_bytes(clean_playlists(200, 5)))
    )
    (root / "mpd" / "mpd.slice.5.json").write_bytes(slice_bytes(DIRTY + clean_playlists(300, 3)))
    (root / "mpd" / "mpd.slice.6.json").write_text('{"playlists": [{"pid": 1, "tracks": [')
    (root / "melon").mkdir()
    (root / "melon" / "train.json").write_text(json.dumps(
        [{"id": 10, "songs": [1, 2, 3, 2]}, {"id": 11, "songs": [3, 1]}, {"id": 12, "songs": []},
         {"id": 10, "songs": [5, 6]}, {"songs": [1]}, {"id": 13, "songs": [1, True, "7"]}]))  # fmt: skip
    (root / "melon" / "val.json").write_text(json.dumps([{"id": 11, "songs": [9, 8, 7]}]))
    (root / "melon" / "song_meta.json").write_text(json.dumps(
        [{"id": 1, "artist_id_basket": [100], "song_gn_gnr_basket": ["GN01"],
          "song_gn_dtl_gnr_basket": ["GN0102", "GN0101"]},
         {"id": 2, "artist_id_basket": [200, 100], "song_gn_gnr_basket": ["GN02"]}, {"no": "id"}]))  # fmt: skip
    (root / "table").mkdir()
    rows = [{"playlist_id": None if i % 97 == 0 else f"p{(i * 13) % 40}",
             "track_id": "" if i % 29 == 0 else f"t{(i * 7) % 60}", "pos": i % 11} for i in range(900)]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), root / "table" / "a.parquet", row_group_size=100)
    pq.write_table(pa.table({"playlist_id": [7, 7, 8], "track_id": ["t1", "t2", "t1"]}),
                   root / "table" / "b.parquet")  # fmt: skip
    pacsv.write_csv(pa.Table.from_pylist(rows[:150]), root / "table" / "c.csv")
    (root / "table" / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[150:300]))
    pq.write_table(
        pa.table({"playlist_id": ["q", "q"], "track_id": [5, 6]}), root / "table" / "e.parquet"
    )
    (root / "table" / "f.csv").write_text("wrong,header\n1,2\n")
    pq.write_table(pa.table({"track_id": [f"u:{i}" for i in range(0, 40, 3)],
                             "audio_uri": ["x"] * 14, "uri": [f"u:{i}" for i in range(0, 40, 3)]}),
                   root / "tracks.parquet")  # fmt: skip
    return {
        "mpd": {"inputs": (str(root / "mpd"),), "format": "mpd", "parts": 3},
        "mpd-with-audio": {"inputs": (str(root / "mpd"),), "format": "mpd", "parts": 2,
                           "tracks": str(root / "tracks.parquet"), "track_key": "uri"},
        "melon": {"inputs": (str(root / "melon"),), "format": "melon", "melon_genres": "both"},
        "table": {"inputs": (str(root / "table"),), "format": "table", "parts": 3},
    }  # fmt: skip


def run_beam(output: str, **kwargs) -> None:
    pipeline = make_pipeline([])
    pl.build(pipeline, pl.PlaylistsJob(output=output, **kwargs))
    pipeline.run().wait_until_finish()


@pytest.mark.parametrize("name", ["mpd", "mpd-with-audio", "melon", "table"])
def test_the_local_runner_writes_the_beam_jobs_bytes(inputs, name, tmp_path):
    run_beam(str(tmp_path / "beam"), **inputs[name])
    local.run(pl.PlaylistsJob(output=str(tmp_path / "local"), **inputs[name]), workers=2,
              progress=False)  # fmt: skip
    assert tree(str(tmp_path / "local")) == tree(str(tmp_path / "beam"))
    body = publish.require_success(str(tmp_path / "local" / "playlists.parquet"))
    assert body["counts"]["playlists"] > 0 and body["dropped"]


def test_one_worker_and_two_workers_write_the_same_bytes(inputs, tmp_path):
    for workers in (1, 2):
        local.run(pl.PlaylistsJob(output=str(tmp_path / str(workers)), **inputs["mpd"]),
                  workers=workers, progress=False)  # fmt: skip
    assert tree(str(tmp_path / "1")) == tree(str(tmp_path / "2"))


def test_clean_slices_take_the_columnar_reader_with_the_general_readers_result(tmp_path):
    data = slice_bytes(
        clean_playlists(0, 50) + [{"pid": "x", "tracks": [entry(1, "a"), entry(0, "b")]}]
    )
    fast, general = mpd.parse_mpd_clean(data, "s.json"), mpd.parse_mpd_general(data, "s.json")
    assert fast is not None
    assert fast.records.equals(general.records) and fast.drops == general.drops
    assert by_track(fast.meta).equals(by_track(general.meta))


def by_track(meta: pa.Table) -> pa.Table:
    return meta.take(pa.compute.sort_indices(meta.column("track_id")))


@pytest.mark.parametrize("bad", DIRTY, ids=lambda p: str(p.get("pid", "no-pid")))
def test_any_bad_record_sends_the_slice_to_the_general_reader(bad):
    assert mpd.parse_mpd_clean(slice_bytes(clean_playlists(0, 3) + [bad]), "s.json") is None


def test_a_table_read_in_row_group_units_equals_the_table_read_whole(inputs, tmp_path, monkeypatch):
    job = pl.PlaylistsJob(output=str(tmp_path / "whole"), **inputs["table"])
    local.run(job, workers=1, progress=False)
    monkeypatch.setattr(plain, "ROWS_PER_UNIT", 150)
    units = steps.plan(job).units
    assert sum(u.uri.endswith("a.parquet") for u in units) == 5  # 9 row groups of 100 rows
    local.run(pl.PlaylistsJob(output=str(tmp_path / "units"), **inputs["table"]), workers=1,
              progress=False)  # fmt: skip
    assert tree(str(tmp_path / "units")) == tree(str(tmp_path / "whole"))
    failures = schemas.read_table(str(tmp_path / "units" / "playlists_failures.parquet"),
                                  schemas.SOURCE_FAILURES).to_pylist()  # fmt: skip
    per_file = [f for f in failures if f["source"].endswith("a.parquet") and "empty" in f["error"]]
    assert len(per_file) == 20  # 30 empty ids in a.parquet: 20 examples per file, as read whole


def test_default_parts_keep_about_two_million_parquet_rows_each(tmp_path, monkeypatch):
    pq.write_table(pa.table({"playlist_id": ["p"] * 1000, "track_id": ["t"] * 1000}),
                   tmp_path / "t.parquet", row_group_size=100)  # fmt: skip
    monkeypatch.setattr(steps, "ROWS_PER_PART", 300)
    the_plan = steps.plan(pl.PlaylistsJob((str(tmp_path / "t.parquet"),), "table", str(tmp_path)))
    assert the_plan.parts == 4


def test_a_worker_that_dies_ends_the_run_with_a_clear_error(tmp_path):
    job = pl.PlaylistsJob((str(tmp_path),), "mpd", str(tmp_path / "out"))
    runner = local._Runner(2, (job, 1, str(tmp_path), None, ()))
    try:
        with pytest.raises(local.WorkerDied, match="worker process died"):
            list(runner.map(os._exit, [(1,), (1,)]))
    finally:
        runner.close()


def test_the_cli_shows_progress_and_ends_with_the_summary(inputs, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "duet.cli", "playlists", "--input", *inputs["mpd"]["inputs"],
                           "--format", "mpd", "--output", str(tmp_path), "--workers", "1", "--parts", "3"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert "parse: 100%" in proc.stderr and "7/7" in proc.stderr and "file/s" in proc.stderr
    assert "playlists=" in proc.stderr and "entries/s=" in proc.stderr
    assert "write: 100%" in proc.stderr and "3/3" in proc.stderr
    assert "playlists   " in proc.stdout and "wall time" in proc.stdout and "dropped" in proc.stdout
