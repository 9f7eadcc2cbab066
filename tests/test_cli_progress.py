"""Long work is visible (a bar on a terminal; one plain line every DUET_PROGRESS_EVERY seconds
and one at the end when stderr is a file or a pipe, or with --quiet), and so is partial emptiness."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.tables import write_playlists


def duet(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duet.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})})  # fmt: skip


def test_cf_training_reports_its_epochs_as_plain_lines_in_a_log(tmp_path):
    lists = [[f"t{(i * 7 + j) % 40:02d}" for j in range(6)] for i in range(60)]
    playlists = write_playlists(str(tmp_path), lists)
    result = duet("embeddings", "cf", "--playlists", playlists, "--output", str(tmp_path / "d"),
                  "--factors", "4", "--epochs", "3", env={"DUET_PROGRESS_EVERY": "0"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("warp: ")]
    assert lines and lines[-1].startswith("warp: 3/3 (100 %)"), result.stderr
    assert "\r" not in result.stderr


def test_a_no_op_shards_rerun_reports_every_track_unchanged_and_no_bar_with_quiet(catalog,
                                                                                 tmp_path):  # fmt: skip
    argv = ["shards", "--tracks", os.path.join(catalog, "audio", "*", "*"), "--output",
            str(tmp_path / "d"), "--streams", "wav-16000", "--quiet"]  # fmt: skip
    assert duet(*argv).returncode == 0
    again = duet(*argv)
    assert again.returncode == 0, again.stderr
    assert "nothing to decode (every shard unchanged)" in again.stdout
    last = again.stderr.strip().splitlines()[-1]
    assert last.startswith("tracks: ") and "(100 %)" in last and "0 failed" in last


def test_epochs_without_pairs_are_reported_loudly(capsys):
    from duet.cli.pairs import warn_empty_epochs

    warn_empty_epochs({"w2v": {"0000": {"rows": 0}, "0001": {"rows": 12}},
                       "playlist_co": {"0000": {"rows": 3}, "0001": {"rows": 4}}})  # type: ignore[dict-item]  # fmt: skip
    err = capsys.readouterr().err
    assert "WARNING: w2v: 1 of 2 epochs have no pairs (epochs 0)" in err
    assert "playlist_co" not in err
