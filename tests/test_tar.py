"""The deterministic tar writer: readable by tarfile, exact offsets, identical bytes."""

import io
import tarfile

from duet.pipelines.shardset.tar import TarWriter


class Sink(io.BytesIO):
    def close(self):
        self.final = self.getvalue()
        super().close()


def write(members):
    sink = Sink()
    writer = TarWriter(sink)
    offsets = [writer.add(name, data) for name, data in members]
    writer.close()
    return sink.final, offsets


MEMBERS = [
    ("a-1.npy", b"x" * 1000),
    ("a-1.json", b"{}"),
    ("b-2.npy", b""),
    ("b-2.json", b"y" * 512),
]


def test_members_read_back_with_tarfile_in_order():
    data, _ = write(MEMBERS)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()] == MEMBERS
        assert all(m.mtime == 0 and m.uid == 0 and m.mode == 0o444 for m in tar.getmembers())


def test_offsets_point_at_member_data():
    data, offsets = write(MEMBERS)
    for (_, payload), offset in zip(MEMBERS, offsets, strict=True):
        assert data[offset : offset + len(payload)] == payload


def test_same_members_give_identical_bytes_padded_to_records():
    first, _ = write(MEMBERS)
    second, _ = write(MEMBERS)
    assert first == second and len(first) % tarfile.RECORDSIZE == 0


def test_empty_archive_is_valid():
    data, _ = write([])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmembers() == []
