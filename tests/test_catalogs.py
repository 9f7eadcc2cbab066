"""``duet catalog``: each evaluation dataset read from a miniature with its real file layout,
its header quirks and broken files, through the command a user runs."""

import csv
import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import soundfile

from duet import publish, schemas
from duet.catalogs import magnatagatune
from duet.sample_catalog import encode
from duet.training import data as data_layer
from duet.training.store import Store
from tests.support.helpers import tone

TAGS = [f"tag{i:03d}" for i in range(60)]


def clip_name(song: str, part: int) -> str:
    return f"{song}-{part * 29}-{part * 29 + 29}.mp3"


@pytest.fixture(scope="module")
def mtat(tmp_path_factory) -> str:
    """MagnaTagATune's layout: folders 0-f of MP3 clips named <song>-<start>-<end>.mp3 and a
    tab-separated, fully quoted annotations_final.csv; clip 8 is a zero-byte MP3 (as in the
    real archive), clip 9 is listed but absent. Tag i is on clips whose id is divisible by
    i % 7 + 1, so the top-50 cut and its ties are exercised."""
    root = tmp_path_factory.mktemp("mtat")
    clips = [("0", "artist_a-album-01-song_one", 0), ("0", "artist_a-album-01-song_one", 1),
             ("5", "artist_b-album-02-song_two", 0), ("c", "artist_c-album-03-song_three", 0),
             ("c", "artist_c-album-03-song_three", 1), ("d", "artist_d-album-04-song_four", 0),
             ("f", "artist_e-album-05-song_five", 0), ("f", "artist_e-album-05-song_five", 1),
             ("e", "artist_f-album-06-broken", 0), ("b", "artist_g-album-07-missing", 0)]  # fmt: skip
    audio = tone(5, 22050)  # longer than one 256-frame mel patch (~4.1 s)
    rows = []
    for clip_id, (folder, song, part) in enumerate(clips):
        path = f"{folder}/{clip_name(song, part)}"
        os.makedirs(root / folder, exist_ok=True)
        if clip_id == 8:
            (root / path).write_bytes(b"")
        elif clip_id != 9:
            encode(audio, 22050, "mp3", str(root / path))
        flags = ["1" if clip_id % (i % 7 + 1) == 0 else "0" for i in range(len(TAGS))]
        rows.append([str(clip_id), *flags, path])
    with open(root / "annotations_final.csv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(["clip_id", *TAGS, "mp3_path"])
        writer.writerows(rows)
    return str(root)


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duet.cli", *argv], capture_output=True,
                          text=True, check=False)  # fmt: skip


def test_song_of_a_clip_drops_its_time_suffix():
    assert magnatagatune.song_of("f/american_bach_soloists-j_s__bach-01-bwv54__i_aria-0-29.mp3") == (
        "american_bach_soloists-j_s__bach-01-bwv54__i_aria")  # fmt: skip
    assert [magnatagatune.folder_split(p) for p in ("0/x.mp3", "b/x", "c/x", "d/x", "f/x")] == [
        "train", "train", "val", "test", "test"]  # fmt: skip


def test_magnatagatune_catalogue_from_the_real_layout(mtat, tmp_path):
    out = str(tmp_path / "cat")
    done = run_cli("catalog", "magnatagatune", "--input", mtat, "--output", out)
    assert done.returncode == 0, done.stderr
    assert "8 tracks" in done.stdout and "2 failures" in done.stdout, done.stdout
    marker = publish.require_success(out)
    assert marker["counts"]["splits"] == {"train": 3, "val": 2, "test": 3}
    assert marker["counts"]["failure_reasons"] == {"zero-byte audio file": 1,
                                                   "missing audio file": 1}  # fmt: skip
    assert len(marker["tags"]) == 50
    assert marker["tags"][:7] == [
        f"tag{i:03d}" for i in (0, 7, 14, 21, 28, 35, 42)
    ]  # on every clip
    manifest = schemas.read_table(os.path.join(out, "tracks.parquet"), schemas.TRACK_MANIFEST)
    assert sorted(manifest.column("track_id").to_pylist()) == [str(i) for i in range(8)]
    assert all(os.path.getsize(p) > 0 for p in manifest.column("audio_uri").to_pylist())
    failures = schemas.read_table(os.path.join(out, "failures.parquet"), schemas.FAILURES)
    assert sorted(failures.column("track_id").to_pylist()) == ["8", "9"]
    labels = pq.read_table(os.path.join(out, "labels.parquet")).to_pylist()
    first = next(r for r in labels if r["track_id"] == "0")
    assert len(first["tags"]) == 50 and first["song"] == "artist_a-album-01-song_one"
    splits = schemas.read_table(os.path.join(out, "splits.parquet"), schemas.SPLITS)
    assert dict(zip(*(splits.column(c).to_pylist() for c in ("track_id", "split")),
                    strict=True))["3"] == "val"  # fmt: skip


def test_magnatagatune_songs_group_their_clips_under_one_track_id(mtat, tmp_path):
    out = str(tmp_path / "songs")
    done = run_cli("catalog", "magnatagatune", "--input", mtat, "--output", out, "--unit", "song")
    assert done.returncode == 0, done.stderr
    labels = {
        r["track_id"]: r for r in pq.read_table(os.path.join(out, "labels.parquet")).to_pylist()
    }
    assert len(labels) == 5 and labels["artist_a-album-01-song_one"]["clip_ids"] == ["0", "1"]
    manifest = schemas.read_table(os.path.join(out, "tracks.parquet"), schemas.TRACK_MANIFEST)
    audio = dict(zip(*(manifest.column(c).to_pylist() for c in ("track_id", "audio_uri")),
                     strict=True))  # fmt: skip
    joined = soundfile.info(audio["artist_a-album-01-song_one"])  # two 5 s clips, end to end
    assert joined.format == "FLAC" and joined.duration == pytest.approx(10.0, abs=0.2)
    assert "song_one" not in audio["artist_a-album-01-song_one"]  # ids never become file names


def test_magnatagatune_split_files_override_the_folders(mtat, tmp_path):
    lists = tmp_path / "split"
    lists.mkdir()
    (lists / "train.txt").write_text("0\n1\n2\n3\n")
    (lists / "valid.txt").write_text("d/" + clip_name("artist_d-album-04-song_four", 0) + "\n")
    (lists / "test.txt").write_text("6\n7\n")
    out = str(tmp_path / "files")
    done = run_cli("catalog", "magnatagatune", "--input", mtat, "--output", out,
                   "--split-files", str(lists))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert publish.require_success(out)["counts"]["splits"] == {"train": 4, "val": 1, "test": 2,
                                                                "none": 1}  # fmt: skip


def test_magnatagatune_without_annotations_is_one_line(tmp_path):
    done = run_cli("catalog", "magnatagatune", "--input", str(tmp_path), "--output",
                   str(tmp_path / "o"))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"duet catalog: {tmp_path}: no annotations_final.csv (download it beside the mp3 folders)"
    ]


def test_magnatagatune_catalogue_feeds_duet_shards(mtat, tmp_path):
    out = str(tmp_path / "cat")
    assert run_cli("catalog", "magnatagatune", "--input", mtat, "--output", out).returncode == 0
    data = str(tmp_path / "data")
    done = run_cli("shards", "--tracks", os.path.join(out, "tracks.parquet"), "--output", data,
                   "--streams", "wav-22050")  # fmt: skip
    assert done.returncode == 0, done.stderr
    members = data_layer.Root(Store(data)).members["wav-22050"]
    assert sorted(members) == [str(i) for i in range(8)]


@pytest.fixture(scope="module")
def gtzan_dir(tmp_path_factory) -> str:
    """GTZAN's layout (genres/<genre>/<genre>.000NN.wav) with the fault-filtered split files;
    jazz.00054.wav has zero bytes (unreadable in the Kaggle copy), jazz.00099 is listed by the
    split but absent, blues.00002 is in no split (filtered out)."""
    root = tmp_path_factory.mktemp("gtzan")
    for genre, numbers in (("blues", (0, 1, 2)), ("jazz", (0, 54))):
        os.makedirs(root / "genres" / genre)
        for n in numbers:
            path = root / "genres" / genre / f"{genre}.{n:05d}.wav"
            if (genre, n) == ("jazz", 54):
                path.write_bytes(b"")
            else:
                soundfile.write(str(path), tone(1, 22050), 22050, subtype="PCM_16")
    (root / "train_filtered.txt").write_text("blues/blues.00000.wav\njazz/jazz.00000.wav\n")
    (root / "valid_filtered.txt").write_text("blues/blues.00001.wav\n")
    (root / "test_filtered.txt").write_text("jazz/jazz.00054.wav\njazz/jazz.00099.wav\n")
    return str(root)


def test_gtzan_catalogue_keeps_the_fault_filtered_split(gtzan_dir, tmp_path):
    out = str(tmp_path / "g")
    done = run_cli("catalog", "gtzan", "--input", gtzan_dir, "--output", out)
    assert done.returncode == 0, done.stderr
    marker = publish.require_success(out)
    assert marker["counts"]["splits"] == {"train": 2, "val": 1, "none": 1}
    assert marker["counts"]["failure_reasons"] == {"zero-byte audio file": 1,
                                                   "missing audio file": 1}  # fmt: skip
    labels = {
        r["track_id"]: r["genre"]
        for r in pq.read_table(os.path.join(out, "labels.parquet")).to_pylist()
    }
    assert labels == {"blues.00000": "blues", "blues.00001": "blues", "blues.00002": "blues",
                      "jazz.00000": "jazz"}  # fmt: skip


@pytest.fixture(scope="module")
def fma_dir(tmp_path_factory) -> str:
    """FMA's layout: fma_metadata/tracks.csv with its three header rows and a quoted comma in a
    title, fma_small/<id // 1000>/<id>.mp3; track 140 has zero bytes, 141 is of the large
    subset only, 10 of medium."""
    root = tmp_path_factory.mktemp("fma")
    os.makedirs(root / "fma_metadata")
    rows = [["", "set", "set", "track", "track"], ["", "split", "subset", "genre_top", "title"],
            ["track_id", "", "", "", ""], ["2", "training", "small", "Hip-Hop", "Food, Again"],
            ["5", "validation", "small", "Rock", "x"], ["10", "test", "medium", "Pop", "y"],
            ["140", "training", "small", "Folk", "z"], ["141", "training", "large", "", "w"],
            ["1042", "test", "small", "Folk", "v"]]  # fmt: skip
    with open(root / "fma_metadata" / "tracks.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    for track in (2, 5, 140, 1042):
        path = root / "fma_small" / f"{track // 1000:03d}" / f"{track:06d}.mp3"
        os.makedirs(path.parent, exist_ok=True)
        if track == 140:
            path.write_bytes(b"")
        else:
            encode(tone(1, 22050), 22050, "mp3", str(path))
    return str(root)


def test_fma_small_catalogue_reads_the_three_header_rows(fma_dir, tmp_path):
    out = str(tmp_path / "f")
    done = run_cli("catalog", "fma", "--input", fma_dir, "--output", out, "--subset", "small")
    assert done.returncode == 0, done.stderr
    marker = publish.require_success(out)
    assert marker["counts"]["splits"] == {"train": 1, "val": 1, "test": 1}
    assert marker["counts"]["failure_reasons"] == {"zero-byte audio file": 1}
    manifest = schemas.read_table(os.path.join(out, "tracks.parquet"), schemas.TRACK_MANIFEST)
    rows = {r["track_id"]: r for r in manifest.to_pylist()}
    assert rows["2"]["genres"] == ["Hip-Hop"] and rows["1042"]["audio_uri"].endswith(
        "001/001042.mp3"
    )


@pytest.fixture(scope="module")
def covers_dir(tmp_path_factory) -> str:
    """Covers80's layout: covers32k/<song>/<version>.mp3 and the two version lists; the second
    version of song_b is listed but absent."""
    root = tmp_path_factory.mktemp("covers") / "covers32k"
    versions = {"song_a": ("a+one+01", "b+two+05"), "song_b": ("c+three+02", "d+four+07")}
    for song, names in versions.items():
        os.makedirs(root / song)
        for i, name in enumerate(names):
            if (song, i) != ("song_b", 1):
                encode(tone(5, 22050), 22050, "mp3", str(root / song / f"{name}.mp3"))
    (root / "list1.list").write_text("song_a/a+one+01\nsong_b/c+three+02\n")
    (root / "list2.list").write_text("song_a/b+two+05\nsong_b/d+four+07\n")
    return str(root.parent)


def test_covers80_catalogue_labels_each_version_with_its_song(covers_dir, tmp_path):
    out = str(tmp_path / "c")
    done = run_cli("catalog", "covers80", "--input", covers_dir, "--output", out)
    assert done.returncode == 0, done.stderr
    labels = pq.read_table(os.path.join(out, "labels.parquet")).to_pylist()
    assert sorted((r["track_id"], r["clique"]) for r in labels) == [
        ("song_a/a+one+01", "song_a"),
        ("song_a/b+two+05", "song_a"),
        ("song_b/c+three+02", "song_b"),
    ]
    assert publish.require_success(out)["counts"]["failure_reasons"] == {"missing audio file": 1}


@pytest.fixture(scope="module")
def jamendo_dir(tmp_path_factory) -> str:
    """The cloned repository's data/ (a subset TSV whose multi-tag rows run past the header,
    the split-0 files) and the audio in <NN>/<id>.mp3 — track_2's only as the low-quality
    .low.mp3, track_3's zero bytes, track_4 not in any split file."""
    root = tmp_path_factory.mktemp("jamendo")
    header = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"
    rows = {1: "mood/theme---happy\tmood/theme---party", 2: "mood/theme---sad",
            3: "mood/theme---calm", 4: "mood/theme---happy"}  # fmt: skip
    lines = {t: f"track_{t:07d}\tartist_{t:06d}\talbum_1\t{t:02d}/{t}.mp3\t30.0\t{tags}\n"
             for t, tags in rows.items()}  # fmt: skip
    os.makedirs(root / "data" / "splits" / "split-0")
    (root / "data" / "autotagging_moodtheme.tsv").write_text(header + "".join(lines.values()))
    for name, tracks in (("train", [1]), ("validation", [2]), ("test", [3])):
        (root / "data" / "splits" / "split-0" / f"autotagging_moodtheme-{name}.tsv").write_text(
            header + "".join(lines[t] for t in tracks)
        )
    for t in (1, 2, 3, 4):
        os.makedirs(root / "audio" / f"{t:02d}")
        name = f"{t}.low.mp3" if t == 2 else f"{t}.mp3"
        if t == 3:
            (root / "audio" / f"{t:02d}" / name).write_bytes(b"")
        else:
            encode(tone(1, 22050), 22050, "mp3", str(root / "audio" / f"{t:02d}" / name))
    return str(root)


def test_mtg_jamendo_catalogue_reads_rows_longer_than_their_header(jamendo_dir, tmp_path):
    out = str(tmp_path / "j")
    done = run_cli("catalog", "mtg-jamendo", "--input", jamendo_dir, "--output", out,
                   "--subset", "moodtheme")  # fmt: skip
    assert done.returncode == 0, done.stderr
    marker = publish.require_success(out)
    assert marker["counts"]["splits"] == {"train": 1, "val": 1, "none": 1}
    assert marker["counts"]["failure_reasons"] == {"zero-byte audio file": 1}
    labels = {
        r["track_id"]: r["tags"]
        for r in pq.read_table(os.path.join(out, "labels.parquet")).to_pylist()
    }
    assert labels["track_0000001"] == ["mood/theme---happy", "mood/theme---party"]
    manifest = schemas.read_table(os.path.join(out, "tracks.parquet"), schemas.TRACK_MANIFEST)
    paths = dict(
        zip(*(manifest.column(c).to_pylist() for c in ("track_id", "audio_uri")), strict=True)
    )
    assert paths["track_0000002"].endswith("02/2.low.mp3")


def test_a_catalogue_whose_every_file_is_broken_publishes_nothing(tmp_path):
    root = tmp_path / "covers32k"
    os.makedirs(root / "song")
    (root / "song" / "a.mp3").write_bytes(b"")
    (root / "list1.list").write_text("song/a\n")
    (root / "list2.list").write_text("song/b\n")
    out = tmp_path / "out"
    done = run_cli("catalog", "covers80", "--input", str(tmp_path), "--output", str(out))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "duet catalog: covers80: no usable track (2 failed: missing audio file, zero-byte audio "
        "file); nothing published"]  # fmt: skip
    assert publish.read_success(str(out)) is None


def test_the_eval_chain_on_miniatures_ends_in_the_papers_tables(
    mtat, covers_dir, dataset, tmp_path
):
    """What ``make eval-magnatagatune`` / ``eval-covers80`` run: catalogue → shards → embed
    (a checkpoint trained on another catalogue) → the paper's protocol → its table."""
    from duet.training.loop import TrainConfig, train

    ckpt = str(tmp_path / "ckpt")
    train(TrainConfig(recipe="alonso-co", data=dataset, out=ckpt, epochs=1, batch_size=2,
                      workers=0, progress=False, max_steps=1), {"warmup_steps": 2})  # fmt: skip
    tables = {}
    for name, source, protocol in (
        ("magnatagatune", mtat, ["--protocol", "clmr-linear", "--label-column", "tags",
                                 "--seeds", "1", "--lr", "1e-2"]),
        ("covers80", covers_dir, ["--protocol", "pemr-cover", "--label-column", "clique"]),
    ):  # fmt: skip
        out = tmp_path / name
        for argv in (
            ["catalog", name, "--input", source, "--output", str(out / "catalog")],
            ["shards", "--tracks", str(out / "catalog" / "tracks.parquet"), "--output",
             str(out / "data"), "--streams", "mel-alonso"],
            ["embed", "--checkpoint", os.path.join(ckpt, "checkpoint.pt"), "--data",
             str(out / "data"), "--output", str(out / "embeddings.parquet")],
            ["evaluate", *protocol, "--embeddings", str(out / "embeddings.parquet"), "--labels",
             str(out / "catalog" / "labels.parquet"), "--splits",
             str(out / "catalog" / "splits.parquet"), "--output", str(out / "report.json")],
        ):  # fmt: skip
            done = run_cli(*argv)
            assert done.returncode == 0, (argv[0], done.stderr[-2000:])
        with open(out / "report.json") as f:
            tables[name] = json.load(f)["table"].splitlines()[0]
    assert tables == {"magnatagatune": "| ROC-AUC (tag) | PR-AUC (tag) | ROC-AUC (clip) | PR-AUC (clip) |",
                      "covers80": "| MAP | P@10 | MR1 |"}  # fmt: skip


def msd_id(letters: str) -> str:
    """An MSD track id (TR + 16 letters/digits) whose 3rd-5th letters are ``letters``."""
    return f"TR{letters}AW128F429D538"


@pytest.fixture(scope="module")
def msd_dir(tmp_path_factory) -> str:
    """MSD-Last.fm as a user has it after converting the pickles: train.txt (plain ids),
    valid.csv (a header line, CRLF), test.tsv (id then a count column); tags.tsv with a header
    and one tag per field; 7digital previews nested A/B/C/<id>.mp3 or flat. The third train
    track's preview has zero bytes, the second test track's is absent, and one test line is a
    path, not an MSD id."""
    root = tmp_path_factory.mktemp("msd")
    ids = {k: msd_id(k) for k in ("ABC", "DEF", "GHI", "JKL", "MNO", "PQR")}
    (root / "train.txt").write_text("\n".join(ids[k] for k in ("ABC", "DEF", "GHI")) + "\n")
    (root / "valid.csv").write_bytes(f"track_id\r\n{ids['JKL']}\r\n".encode())
    (root / "test.tsv").write_text(f"{ids['MNO']}\t1\n{ids['PQR']}\t1\n../../etc/passwd\t1\n")
    (root / "tags.tsv").write_text(f"msd_id\ttags\n{ids['ABC']}\trock\tfemale vocalists\n"
                                   f"{ids['DEF']}\trock\n{ids['JKL']}\tjazz\n")  # fmt: skip
    for key, nested in (("ABC", True), ("DEF", False), ("GHI", True), ("JKL", True),
                        ("MNO", True)):  # fmt: skip
        folder = root / "audio" / (os.path.join(*key) if nested else "")
        os.makedirs(folder, exist_ok=True)
        if key == "GHI":
            (folder / f"{ids[key]}.mp3").write_bytes(b"")
        else:
            encode(tone(1, 22050), 22050, "mp3", str(folder / f"{ids[key]}.mp3"))
    return str(root)


def test_msd_lastfm_catalogue_reads_the_text_split_and_tags(msd_dir, tmp_path):
    out = str(tmp_path / "m")
    done = run_cli("catalog", "msd-lastfm", "--input", msd_dir, "--output", out)
    assert done.returncode == 0, done.stderr
    assert ("split files: train 3 (published 201,680), val 1 (published 11,774), test 3 "
            "(published 28,435)") in done.stdout, done.stdout  # fmt: skip
    marker = publish.require_success(out)
    assert marker["counts"]["splits"] == {"train": 2, "val": 1, "test": 1}
    assert marker["counts"]["failure_reasons"] == {"zero-byte audio file": 1,
                                                   "missing audio file": 1,
                                                   "not an MSD track id": 1}  # fmt: skip
    assert marker["tags"] == ["rock", "female vocalists", "jazz"] and marker["untagged"] == 1
    labels = {
        r["track_id"]: r["tags"]
        for r in pq.read_table(os.path.join(out, "labels.parquet")).to_pylist()
    }
    assert labels[msd_id("ABC")] == ["rock", "female vocalists"] and labels[msd_id("MNO")] == []
    manifest = schemas.read_table(os.path.join(out, "tracks.parquet"), schemas.TRACK_MANIFEST)
    paths = dict(zip(*(manifest.column(c).to_pylist() for c in ("track_id", "audio_uri")),
                     strict=True))  # fmt: skip
    assert paths[msd_id("ABC")].endswith(os.path.join("audio", "A", "B", "C", msd_id("ABC") +
                                                      ".mp3"))  # fmt: skip
    assert paths[msd_id("DEF")] == os.path.join(msd_dir, "audio", msd_id("DEF") + ".mp3")


def test_msd_lastfm_track_in_two_splits_is_one_line(msd_dir, tmp_path):
    lists = tmp_path / "split"
    lists.mkdir()
    (lists / "train.txt").write_text(msd_id("ABC") + "\n")
    (lists / "val.txt").write_text(msd_id("JKL") + "\n")
    (lists / "test.txt").write_text(msd_id("ABC") + "\n")
    done = run_cli("catalog", "msd-lastfm", "--input", msd_dir, "--output", str(tmp_path / "o"),
                   "--split-files", str(lists))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"duet catalog: {msd_id('ABC')} is in both the train and the test split files (the "
        "split leaks)"]  # fmt: skip


def test_msd_lastfm_without_text_split_files_points_to_the_conversion(tmp_path):
    (tmp_path / "tags.tsv").write_text("")
    (tmp_path / "audio").mkdir()
    done = run_cli("catalog", "msd-lastfm", "--input", str(tmp_path), "--output",
                   str(tmp_path / "o"))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"duet catalog: {tmp_path}: no train.txt/.csv/.tsv split file (convert the pickled "
        "split first: docs/papers.md)"]  # fmt: skip


@pytest.fixture(scope="module")
def shs_dir(tmp_path_factory) -> str:
    """SHS100K's layout: ``list`` with a header line (set_id, ver_id, title, performer, url,
    status), SHS100K-TRAIN under meta/ and -VAL / -TEST beside ``list`` as the repository
    ships them; audio/<set>_<version>.<ext> as a downloader leaves it. Version 0_2's video is
    unavailable (status False), 1_0 is zero bytes, 1_2 was never downloaded, 2_0 is in no
    split."""
    root = tmp_path_factory.mktemp("shs")
    rows = [(0, 0, "Yesterday", "The Beatles", "True"), (0, 1, "Yesterday", "Ray Charles", "True"),
            (0, 2, "Yesterday", "Someone", "False"), (1, 0, "Song B", "A", "True"),
            (1, 1, "Song B", "B", "True"), (1, 2, "Song B", "C", "True"),
            (2, 0, "Song C", "D", "True")]  # fmt: skip
    (root / "list").write_text("set_id\tver_id\ttitle\tperformer\turl\tstatus\n" + "".join(
        f"{s}\t{v}\t{t}\t{p}\thttps://www.youtube.com/watch?v=x{s}{v}\t{st}\n"
        for s, v, t, p, st in rows))  # fmt: skip
    os.makedirs(root / "meta")
    (root / "meta" / "SHS100K-TRAIN").write_text("0\t0\n0\t1\n0\t2\n")
    (root / "SHS100K-VAL").write_text("1\t0\n1\t1\n1\t2\n")
    (root / "SHS100K-TEST").write_text("")
    os.makedirs(root / "audio")
    encode(tone(1, 22050), 22050, "mp3", str(root / "audio" / "0_0.mp3"))
    soundfile.write(str(root / "audio" / "0_1.wav"), tone(1, 22050), 22050, subtype="PCM_16")
    (root / "audio" / "1_0.mp3").write_bytes(b"")
    encode(tone(1, 22050), 22050, "mp3", str(root / "audio" / "1_1.mp3"))
    encode(tone(1, 22050), 22050, "mp3", str(root / "audio" / "2_0.mp3"))
    return str(root)


def test_shs100k_catalogue_labels_versions_with_their_cover_set(shs_dir, tmp_path):
    out = str(tmp_path / "s")
    done = run_cli("catalog", "shs100k", "--input", shs_dir, "--output", out)
    assert done.returncode == 0, done.stderr
    marker = publish.require_success(out)
    assert marker["counts"]["splits"] == {"train": 2, "val": 1, "none": 1}
    assert marker["counts"]["failure_reasons"] == {"video unavailable (list status 'False')": 1,
                                                   "zero-byte audio file": 1,
                                                   "missing audio file": 1}  # fmt: skip
    labels = pq.read_table(os.path.join(out, "labels.parquet")).to_pylist()
    assert sorted((r["track_id"], r["clique"], r["performer"]) for r in labels) == [
        ("0_0", "0", "The Beatles"), ("0_1", "0", "Ray Charles"), ("1_1", "1", "B"),
        ("2_0", "2", "D")]  # fmt: skip
    manifest = schemas.read_table(os.path.join(out, "tracks.parquet"), schemas.TRACK_MANIFEST)
    assert {r["track_id"]: r["audio_uri"] for r in manifest.to_pylist()}["0_1"].endswith("0_1.wav")


def test_shs100k_without_its_split_lists_is_one_line(tmp_path):
    (tmp_path / "list").write_text("0\t0\tt\tp\turl\tTrue\n")
    (tmp_path / "audio").mkdir()
    done = run_cli("catalog", "shs100k", "--input", str(tmp_path), "--output",
                   str(tmp_path / "o"))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"duet catalog: {tmp_path}: no SHS100K-TRAIN (SHS100K's split lists)"]  # fmt: skip
