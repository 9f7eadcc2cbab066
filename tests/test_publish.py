"""Publication by generations (duet.publish): a folder's readers switch from one complete
generation to the next in one step, never see a half-written one, and a folder never holds
two; markers that cannot be read mean "not published"; writes are atomic."""

import errno
import os

import pytest

from duet import layout, publish, storage
from tests.support.helpers import tree


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def generation(folder: str, content: dict[str, bytes], **options) -> dict:
    files: dict[str, dict] = {}
    for logical, data in content.items():
        files |= publish.write(folder, logical, data)
    body = layout.summary("test", format_version=2, config={}, inputs={},
                          counts={"rows": len(content)})  # fmt: skip
    return publish.commit(folder, body, files, **options)


def test_readers_get_exactly_the_listed_files_of_the_published_generation(tmp_path):
    folder = str(tmp_path / "t")
    generation(folder, {"part-00000.parquet": b"old0", "part-00001.parquet": b"old1"})
    first = publish.open_folder(folder, "duet x")
    generation(folder, {"part-00000.parquet": b"new0"})
    second = publish.open_folder(folder, "duet x")
    assert first.parts() != second.parts()
    assert [read(os.path.join(folder, p)) for p in second.parts()] == [b"new0"]
    assert sorted(os.listdir(folder)) == sorted([publish.SUCCESS, *second.parts()])


def test_a_new_generation_never_writes_over_a_published_file(tmp_path):
    folder = str(tmp_path / "t")
    generation(folder, {"part-00000.parquet": b"old"})
    published = publish.open_folder(folder, "duet x").parts()
    publish.write(folder, "part-00000.parquet", b"new")  # a run that has not published yet
    assert [read(os.path.join(folder, p)) for p in published] == [b"old"]


def test_identical_content_gets_identical_names(tmp_path):
    folder = str(tmp_path / "t")
    generation(folder, {"part-00000.parquet": b"same"})
    first = publish.open_folder(folder, "x").parts()
    generation(folder, {"part-00000.parquet": b"same"})
    assert publish.open_folder(folder, "x").parts() == first
    assert sorted(os.listdir(folder)) == sorted([publish.SUCCESS, *first])


@pytest.mark.parametrize("content", [b"", b'{"job": "shards", "count', b"\xff\xfe", b"[1, 2]"])
def test_an_empty_truncated_or_foreign_marker_means_not_published(tmp_path, content):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / publish.SUCCESS).write_bytes(content)
    assert publish.read_success(str(folder)) is None
    with pytest.raises(publish.NotPublished, match="run duet shards"):
        publish.open_folder(str(folder), "duet shards")


def test_a_listed_file_that_is_missing_or_short_is_never_published(tmp_path):
    folder = str(tmp_path / "t")
    generation(folder, {"part-00000.parquet": b"published"})
    files = publish.write(folder, "part-00000.parquet", b"next generation")
    name = files["part-00000.parquet"]["name"]
    with open(os.path.join(folder, name), "r+b") as f:
        f.truncate(4)
    body = layout.summary("test", format_version=2, config={}, inputs={}, counts={})
    with pytest.raises(publish.PublishError, match="4 bytes"):
        publish.commit(folder, body, files)
    (name,) = publish.open_folder(folder, "x").parts()
    assert read(os.path.join(folder, name)) == b"published"


def test_a_generation_under_half_the_published_one_is_refused_and_leaves_the_folder_as_it_was(
    tmp_path,
):
    folder = str(tmp_path / "t")
    generation(folder, {f"part-{i:05d}.parquet": bytes([i]) for i in range(4)},
               measures={"rows": "counts.rows"})  # fmt: skip
    before = tree(folder)
    with pytest.raises(publish.WouldShrink, match="from 4 to 1 rows.*--allow-shrink"):
        generation(folder, {"part-00000.parquet": b"x"}, measures={"rows": "counts.rows"})
    assert tree(folder) == before
    generation(folder, {"part-00000.parquet": b"x"}, measures={"rows": "counts.rows"},
               how=publish.Commit(allow_shrink=True))  # fmt: skip
    assert publish.read_success(folder)["counts"] == {"rows": 1}


class DiskFull:
    """A local disk that fills: every write past ``limit`` bytes (in total) raises ENOSPC."""

    def __init__(self, monkeypatch, limit: int):
        self.left = limit
        real = storage.AtomicFile.write

        def write(f, data):
            if len(data) > self.left:
                self.left = 0
                raise OSError(errno.ENOSPC, "No space left on device")
            self.left -= len(data)
            return real(f, data)

        monkeypatch.setattr(storage.AtomicFile, "write", write)


def test_a_disk_that_fills_at_the_marker_leaves_the_previous_marker_whole(tmp_path, monkeypatch):
    folder = str(tmp_path / "t")
    generation(folder, {"part-00000.parquet": b"old"})
    marker = read(os.path.join(folder, publish.SUCCESS))
    files = publish.write(folder, "part-00000.parquet", b"new")
    DiskFull(monkeypatch, limit=10)
    body = layout.summary("test", format_version=2, config={}, inputs={}, counts={})
    with pytest.raises(OSError, match="No space left"):
        publish.commit(folder, body, files)
    assert read(os.path.join(folder, publish.SUCCESS)) == marker
    assert not [n for n in os.listdir(folder) if storage.TEMP_MARK in n]


def test_a_zero_byte_marker_left_by_older_code_does_not_wedge_the_next_run(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / publish.SUCCESS).write_bytes(b"")
    generation(str(folder), {"part-00000.parquet": b"data"})
    assert publish.read_success(str(folder))["counts"] == {"rows": 1}


def test_a_legacy_marker_reads_its_folders_files_by_their_own_names(tmp_path):
    folder = tmp_path / "t"
    (folder / "index").mkdir(parents=True)
    (folder / "index" / "part-00000.parquet").write_bytes(b"x")
    (folder / publish.SUCCESS).write_text('{"job": "shards", "format_version": 1}')
    published = publish.open_folder(str(folder), "duet shards")
    assert published.legacy and published.parts("index") == ["index/part-00000.parquet"]


def test_a_table_is_found_through_its_own_marker_or_its_folders(tmp_path):
    root = str(tmp_path)
    generation(os.path.join(root, "cooc"), {"topk.parquet/part-00000.parquet": b"t"})
    (uri,) = publish.table_uris(os.path.join(root, "cooc", "topk.parquet"), "duet cooccurrence")
    assert read(uri) == b"t"
    with pytest.raises(publish.NotPublished, match=r"run duet cooccurrence\)$"):
        publish.table_uris(os.path.join(root, "other", "topk.parquet"), "duet cooccurrence")


def test_a_table_left_in_an_unpublished_folder_is_never_read(tmp_path):
    """Issue 19 §4: a leftover vectors.parquet beside a cleared marker is no table."""
    folder = tmp_path / "emb" / "cf-warp"
    folder.mkdir(parents=True)
    (folder / "vectors.parquet").write_bytes(b"PAR1 leftover")
    with pytest.raises(publish.NotPublished, match="run duet embeddings cf"):
        publish.table_uris(str(folder / "vectors.parquet"), "duet embeddings cf")


def test_local_writes_land_whole_or_not_at_all(tmp_path):
    path = str(tmp_path / "f.bin")
    storage.write_bytes(path, b"first")
    with pytest.raises(RuntimeError), storage.create(path) as f:
        f.write(b"half of the sec")
        raise RuntimeError("killed")
    assert read(path) == b"first"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_tags_go_before_the_extension():
    assert publish.tagged("index/part-00003.parquet", "ab") == "index/part-00003-ab.parquet"
    assert publish.tagged("shards/wav-16000/shard-00001.tar", "cd") == \
        "shards/wav-16000/shard-00001-cd.tar"  # fmt: skip
    assert publish.tagged("stats/mel-alonso.json", "ef") == "stats/mel-alonso-ef.json"
