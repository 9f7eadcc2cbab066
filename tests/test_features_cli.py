"""``duet features import`` as a user meets it: a summary on success, one line per mistake,
and nothing published or unpublished by a refused run."""

import os
import re

import numpy as np
import pytest

from duet import publish
from duet.cli import main
from tests.support.helpers import cli_error, run_shards


def _save(path, array) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, array)


@pytest.fixture()
def arena(tmp_path) -> str:
    root = tmp_path / "arena_mel"
    for song in (3, 1042, 2999):
        _save(str(root / str(song // 1000) / f"{song}.npy"), np.zeros((48, 300), np.float32))
    _save(str(root / "0" / "5.npy"), np.zeros((40, 300), np.float32))
    return str(root)


def test_an_import_prints_its_summary_and_first_failures(arena, tmp_path, capsys):
    assert main(["features", "import", "--input", arena, "--output", str(tmp_path / "out")]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if "  " in line]
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines)
    assert rows["arrays listed"] == "4" and rows["imported"] == "3" and rows["failed"] == "1"
    assert rows["mel statistics"].startswith("over all tracks")
    assert rows["5"].startswith("validate  40 bands")


def test_a_no_op_import_says_every_array_unchanged(arena, tmp_path, capsys):
    argv = ["features", "import", "--input", arena, "--output", str(tmp_path / "out")]
    assert main(argv) == 0
    assert "4 read, 0 unchanged" in capsys.readouterr().out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "0 read, 4 unchanged" in out and "nothing to read (every shard unchanged)" in out


def test_mistakes_end_in_one_line_and_publish_nothing(arena, tmp_path, capsys):
    out = str(tmp_path / "out")
    yaml = tmp_path / "ferraro.yaml"
    yaml.write_text("n_mels: 48\nsample_rate: 16000\nhop_length: 256\n")
    cases = {
        ("--input", str(tmp_path / "nowhere")): "no such folder, file or matching files",
        ("--input", arena, "--layout", "npy"): "--layout npy needs --profile",
        ("--input", arena, "--profile", str(yaml)): "is duet's own computed mel profile",
        ("--input", arena, "--orientation", "frames-bands"):
            "the first 3 arrays do not fit profile melon (300 bands",
        ("--input", arena, "--splits", str(tmp_path / "none.parquet")):
            "does not exist (run duet splits)",
    }  # fmt: skip
    for extra, message in cases.items():
        line = cli_error(capsys, ["features", "import", "--output", out, *extra])
        assert message in line, (extra, line)
    assert not os.path.exists(out)


def test_an_import_of_only_damaged_arrays_is_one_line(tmp_path, capsys):
    path = tmp_path / "arena_mel" / "0" / "7.npy"
    _save(str(path), np.zeros((48, 300), np.float32))
    path.write_bytes(path.read_bytes()[:300])
    line = cli_error(capsys, ["features", "import", "--input", str(tmp_path / "arena_mel"),
                              "--output", str(tmp_path / "out")])  # fmt: skip
    assert "no array of" in line and "'parse': 1" in line
    assert publish.read_success(str(tmp_path / "out")) is None


def test_an_import_into_an_audio_root_leaves_it_published(arena, catalog, tmp_path, capsys):
    audio = str(tmp_path / "audio")
    run_shards(os.path.join(catalog, "tracks.parquet"), audio, num_shards=1)
    line = cli_error(capsys, ["features", "import", "--input", arena, "--output", audio])
    assert "holds the shards of `duet shards`" in line
    assert publish.require_success(audio)["job"] == "shards"
