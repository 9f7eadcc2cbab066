"""``duet train`` and ``duet embed`` as a user runs them (subprocess): corrupt data caught where
it is read, runs that would learn nothing refused before they start, runs never overwritten,
signals checkpointed, and ranks that stay in step when one of them skips rows."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile
import torch

from duet import layout, publish, readers, schemas
from duet.training import checkpoint, data
from duet.training.store import Store
from tests.support.helpers import run_shards
from tests.support.tables import publish_files

RECIPES = Path(__file__).parents[1] / "training" / "recipes"


def duet(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duet.cli", *argv], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def train_argv(root: str, out: str, *extra: str, recipe: str = "alonso-co") -> list[str]:
    return ["train", "--recipe", recipe, "--data", root, "--out", out, "--batch-size", "2",
            "--workers", "0", "--quiet", *extra, "--set", "warmup_steps=2"]  # fmt: skip


def saved(out: str) -> dict:
    with open(os.path.join(out, "checkpoint.pt"), "rb") as f:
        return checkpoint.loads(f.read(), out)


def metrics(out: str) -> list[dict]:
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def finite(out: str) -> bool:
    return all(
        torch.isfinite(t).all() for t in saved(out)["model"].values() if t.is_floating_point()
    )


@pytest.fixture
def copy(dataset, tmp_path) -> str:
    root = str(tmp_path / "data")
    shutil.copytree(dataset, root)
    return root


def poison(root: str, tracks: list[str] | None = None) -> list[str]:
    """Overwrite the mel-alonso payload of ``tracks`` (default: every track) with 0xFF bytes,
    float16 NaN; returns their ids."""
    members = data.Root(Store(root)).members["mel-alonso"]
    for track in tracks or sorted(members):
        m = members[track]
        with open(os.path.join(root, m.shard), "r+b") as f:
            f.seek(m.start)
            f.write(b"\xff" * (m.length * m.width * 2))
    return tracks or sorted(members)


def first_anchor(root: str) -> str:
    """The anchor of the first row of epoch 0 of the newest pair run's playlist_co."""
    store = data.Root(Store(root))
    return store.manifest(store.latest_run(), "playlist_co", 0).column("anchor_id")[0].as_py()


def drop_block_digests(root: str) -> None:
    """The index as the previous code wrote it: no block digests."""
    for part in glob.glob(os.path.join(root, "index", "*.parquet")):
        pq.write_table(pq.read_table(part).drop_columns(["block_size", "block_digests"]), part)


# ------------------------------------------------------------ corruption caught where read


@pytest.mark.parametrize("index", ["with block digests", "written before block digests"])
def test_flipped_mel_bytes_are_skipped_and_counted_never_trained_into_nan_weights(copy, tmp_path,
                                                                                  index):  # fmt: skip
    if index != "with block digests":
        drop_block_digests(copy)
    (victim,) = poison(copy, [first_anchor(copy)])
    out = str(tmp_path / "run")
    result = duet(*train_argv(copy, out, "--epochs", "1"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert finite(out)
    assert "skipped 1 rows (corrupt 1" in result.stdout and victim in result.stderr


def test_an_epoch_whose_every_row_is_skipped_exits_non_zero_with_the_counts(copy, tmp_path):
    poison(copy)
    result = duet(*train_argv(copy, str(tmp_path / "run"), "--epochs", "1"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("duet train: every row of epoch 0 was skipped (") and "corrupt" in last


def test_a_non_finite_loss_stops_training_naming_the_step_and_track_ids(copy, tmp_path):
    victims = poison(copy)
    out = str(tmp_path / "run")
    result = duet(*train_argv(copy, out, "--epochs", "1", "--no-verify"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "non-finite loss" in last and "epoch 0 step" in last
    assert any(v in last for v in victims) and "Traceback" not in result.stderr
    assert not os.path.exists(os.path.join(out, "checkpoint.pt"))  # nothing NaN was saved


# ------------------------------------------------------------ runs that respect the user


def test_an_out_folder_holding_a_run_is_refused_unless_resume_or_overwrite(dataset, tmp_path):
    out = str(tmp_path / "run")
    assert duet(*train_argv(dataset, out, "--epochs", "1")).returncode == 0
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    again = duet(*train_argv(dataset, out, "--epochs", "1"))
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    assert "already holds a run" in again.stderr and "--resume" in again.stderr
    assert "--overwrite" in again.stderr
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
    assert duet(*train_argv(dataset, out, "--epochs", "1", "--overwrite")).returncode == 0


def test_a_missing_strategy_is_refused_before_the_first_step_with_the_pairs_command(dataset,
                                                                                    tmp_path):  # fmt: skip
    recipe = tmp_path / "mine.yaml"
    recipe.write_text((RECIPES / "alonso-co.yaml").read_text().replace(
        "strategy: playlist_co", "strategy: random_segment"))  # fmt: skip
    out = str(tmp_path / "run")
    result = duet(*train_argv(dataset, out, "--epochs", "1", recipe=str(recipe)))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "no complete pair run of" in result.stderr
    assert f"duet pairs --data {dataset} --strategies random_segment --epochs 0:1" in result.stderr
    assert not os.path.exists(out)


def test_missing_epochs_are_refused_with_the_pairs_command(dataset, tmp_path):
    result = duet(*train_argv(dataset, str(tmp_path / "run"), "--epochs", "0:5"))
    assert result.returncode == 1
    assert "lack epoch 2" in result.stderr
    assert f"duet pairs --data {dataset} --strategies playlist_co --epochs 0:5" in result.stderr


def test_a_latest_run_without_the_strategy_does_not_hide_an_older_run_with_it(copy, tmp_path):
    made = duet("pairs", "--data", copy, "--strategies", "playlist_tco", "--epochs", "0:1",
                "--run-id", "tco-only")  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    with open(os.path.join(copy, "pairs", "LATEST")) as f:
        assert f.read().strip() == "tco-only"
    out = str(tmp_path / "run")
    result = duet(*train_argv(copy, out, "--epochs", "1"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert saved(out)["state"]["run"] != "tco-only"


def test_epochs_accepts_a_range_as_in_pairs(dataset, tmp_path):
    out = str(tmp_path / "run")
    result = duet(*train_argv(dataset, out, "--epochs", "1:2"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert {r["epoch"] for r in metrics(out)} == {1} and saved(out)["state"]["epoch"] == 2


def test_max_steps_is_a_global_step_limit_across_resume(dataset, tmp_path):
    out = str(tmp_path / "run")
    assert duet(*train_argv(dataset, out, "--epochs", "2", "--max-steps", "1")).returncode == 0
    result = duet(*train_argv(dataset, out, "--epochs", "2", "--max-steps", "3", "--resume"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert saved(out)["state"]["global_step"] == 3 and len(metrics(out)) == 3


def test_checkpoint_every_n_steps_saves_mid_epoch(dataset, tmp_path):
    out = str(tmp_path / "run")
    argv = [sys.executable, "-m", "duet.cli", *train_argv(dataset, out, "--epochs", "2",
                                                          "--checkpoint-every", "1")]  # fmt: skip
    seen, process = set(), subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    path = os.path.join(out, "checkpoint.pt")
    while process.poll() is None:
        if os.path.exists(path):
            state = saved(out)["state"]
            seen.add((state["epoch"], state["step"]))
        time.sleep(0.005)
    assert process.returncode == 0, process.stderr.read()[-2000:]
    assert any(step > 0 for _, step in seen)  # a checkpoint inside an epoch, not at its end


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_and_exits_130_then_resume_finishes(dataset, tmp_path, sig):
    out = str(tmp_path / "run")
    argv = [sys.executable, "-m", "duet.cli", *train_argv(dataset, out, "--epochs", "2")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:  # the line printed just before the first step
        if "steps per epoch" in line:
            break
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("duet train: interrupted by")
    assert "re-run the same command" in err and "Traceback" not in err
    assert saved(out)["state"]["epoch"] < 2
    resumed = duet(*train_argv(dataset, out, "--epochs", "2", "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert saved(out)["state"]["epoch"] == 2


def test_recipes_lists_every_recipe_and_train_help_points_to_it():
    listed = duet("recipes")
    assert listed.returncode == 0
    header, *rows = listed.stdout.strip().split("\n\n")[0].splitlines()
    assert header.split() == ["recipe", "system", "strategy", "streams", "encoder", "crop"]
    names = {r.split()[0] for r in rows}
    assert {"alonso-co", "clmr", "choi-cpc", "ferraro", "pemr"} <= names and len(rows) == 14
    clmr = next(r for r in rows if r.startswith("clmr "))
    assert "wav-22050" in clmr and "samplecnn" in clmr and "59049 samples" in clmr
    assert "duet recipes" in duet("train", "--help").stdout


# ------------------------------------------------------------ training never succeeds on nothing


def test_a_run_that_would_take_no_step_fails_before_starting_with_the_numbers(dataset, tmp_path):
    out = str(tmp_path / "run")
    argv = train_argv(dataset, out, "--epochs", "1")
    argv[argv.index("--batch-size") + 1] = "16"
    result = duet(*argv)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    message = result.stderr.strip()
    assert "would take no step: 5 playlist_co pairs" in message and "batch size 16" in message
    assert "1 rank(s)" in message and "--partial-batch" in message
    assert not os.path.exists(os.path.join(out, "checkpoint.pt"))


def test_partial_batch_trains_the_tail_of_a_small_catalogue(dataset, tmp_path):
    out = str(tmp_path / "run")
    argv = train_argv(dataset, out, "--epochs", "1", "--partial-batch")
    argv[argv.index("--batch-size") + 1] = "3"
    result = duet(*argv)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [r["batch"] for r in metrics(out)] == [3, 2]  # 5 pairs


# ------------------------------------------------------------ embed covers every track


@pytest.fixture(scope="module")
def short_root(tmp_path_factory) -> str:
    """A published root of only tracks shorter than a 256-frame mel window (~4 s)."""
    folder = tmp_path_factory.mktemp("short")
    rows = []
    for i, seconds in enumerate((1.5, 2.0)):
        path = str(folder / f"short{i}.wav")
        t = np.arange(int(seconds * 44100)) / 44100
        soundfile.write(path, 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t), 44100)
        rows.append({"track_id": f"short-{i}", "audio_uri": path})
    manifest = str(folder / "tracks.parquet")
    pq.write_table(pa.Table.from_pylist(rows), manifest)
    root = str(folder / "data")
    run_shards(manifest, root, num_shards=1)
    assert publish.read_success(root) is not None
    return root


def test_embed_loops_tracks_shorter_than_the_window_and_records_them(dataset, short_root,
                                                                     tmp_path):  # fmt: skip
    out = str(tmp_path / "run")
    assert duet(*train_argv(dataset, out, "--epochs", "1", "--max-steps", "1")).returncode == 0
    target = str(tmp_path / "short.parquet")
    result = duet("embed", "--checkpoint", os.path.join(out, "checkpoint.pt"), "--data",
                  short_root, "--output", target)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "embedded 2 tracks" in result.stdout
        and "2 shorter than the 256-row window" in result.stdout
    )
    table = readers.read_embeddings(target, "duet embed", users_own=True)
    assert sorted(table.column("track_id").to_pylist()) == ["short-0", "short-1"]
    meta = json.loads(pq.read_schema(target).metadata[b"duet.short_tracks"])
    assert meta["looped_ids"] == ["short-0", "short-1"] and meta["window"] == 256
    assert "looped" in meta["rule"]


# ------------------------------------------------------------ ranks stay in step


@pytest.mark.slow
def test_two_ranks_stay_in_step_when_one_rank_skips_a_missing_member(copy, tmp_path):
    """Rank 1's first batch holds a track missing from the index: both ranks skip that step
    (one all-reduce), take the next together, and the skipped row is counted in metrics."""
    ids = sorted(data.Root(Store(copy)).members["mel-alonso"])
    anchors = [ids[0], "ghost-track", ids[2], ids[3], ids[4], ids[5], ids[6], ids[7]]
    positives = [ids[(i + 1) % len(ids)] for i in range(len(anchors))]
    table = pa.table({"epoch": pa.array([0] * 8, pa.int32()), "strategy": ["playlist_co"] * 8,
                      "anchor_id": anchors, "positive_id": positives})  # fmt: skip
    publish_files(os.path.join(copy, "pairs", "ghost"),
                  {"run": "ghost", "strategies": ["playlist_co"], "published": time.time()},
                  {layout.pair_part("playlist_co", 0): schemas.to_parquet_bytes(table, schemas.PAIRS)})  # fmt: skip
    out = str(tmp_path / "ddp")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
         "29561", "-m", "duet.cli", *train_argv(copy, out, "--epochs", "1")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    records = metrics(out)
    assert [r["loss"] is None for r in records] == [True, False]  # 4 rows per rank, batch 2
    assert records[0]["skipped"] == 1 and saved(out)["state"]["run"] == "ghost"
    assert "skipped 1 rows (missing 1" in result.stdout
