"""What files declare about their length, read from their headers."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duet.pipelines.audio.declared import declared_length


@pytest.mark.parametrize(
    ("name", "container", "seconds", "streams"),
    [
        ("clean.mp3", "mp3", 2.0, 1), ("joined-same.mp3", "mp3", 4.0, 2),
        ("joined-rates.mp3", "mp3", 4.0, 2), ("joined-channels.mp3", "mp3", 4.0, 2),
        ("clean.ogg", "ogg", 2.0, 1), ("clean.opus", "ogg", 2.0, 1), ("chained.ogg", "ogg", 4.0, 2),
        ("clean.flac", "flac", 2.0, 1), ("joined.flac", "flac", 4.0, 2),
        ("clean.wav", "wav", 2.0, 1), ("clean.m4a", "mp4", 2.0, 1),
    ],
)  # fmt: skip
def test_declared_length_of_whole_and_joined_files(
    damaged_files, name, container, seconds, streams
):
    declared = declared_length(damaged_files[name])
    assert declared.container == container and declared.streams == streams
    assert declared.seconds == pytest.approx(seconds, abs=1e-3)
    assert declared.found == pytest.approx(seconds, abs=declared.frame)
    assert declared.cut is None


@pytest.mark.parametrize("name", ["cut.mp3", "cut.wav", "cut.m4a"])
def test_a_cut_file_is_known_to_be_cut(damaged_files, name):
    declared = declared_length(damaged_files[name])
    assert declared.cut and declared.cut.startswith("cut short")


def test_bytes_found_beyond_the_declared_length_are_counted(damaged_files):
    declared = declared_length(damaged_files["understated.flac"])
    assert declared.seconds == pytest.approx(1.0) and declared.found == pytest.approx(2.0)
    assert not declared.agrees(1.0) and not declared.agrees(2.0)


@pytest.mark.timeout(30)
def test_flac_bytes_that_only_look_like_a_joined_stream_are_skipped(damaged_files, tmp_path):
    with open(damaged_files["clean.flac"], "rb") as f:
        data = f.read()
    path = tmp_path / "marker.flac"
    path.write_bytes(data + b"junk fLaC junk")  # "fLaC" without a STREAMINFO block after it
    declared = declared_length(str(path))
    assert declared.streams == 1 and declared.seconds == pytest.approx(2.0)


def test_files_in_no_known_container_declare_nothing(tmp_path, audio_files):
    (tmp_path / "junk.bin").write_bytes(b"\xff" * 100_000)
    for path in (audio_files["text"], audio_files["empty"], str(tmp_path / "junk.bin")):
        assert declared_length(path) is None


MARKERS = [b"fLaC", b"fLaC\x00\x00\x00\x22", b"OggS", b"ID3\x04\x00\x00\x00\x00\x00\x00",
           b"Xing", b"Info", b"VBRI", b"\xff\xfb\x90\x00", b"\xff\xf8", b"RIFF", b"data",
           b"moov", b"TAG", b"APETAGEX"]  # fmt: skip
"""Byte patterns the parsers look for, planted where they do not belong."""


def _mutations(data: bytes, cut: float, edits: list[tuple[float, int, int]]) -> bytes:
    out = bytearray(data[: max(1, int(len(data) * cut))])
    for where, value, marker in edits:
        at = int(where * (len(out) - 1))
        if marker < len(MARKERS):
            out[at : at + len(MARKERS[marker])] = MARKERS[marker]
        else:
            out[at] = value
    return bytes(out)


@pytest.mark.timeout(120)
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(["joined-same.mp3", "chained.ogg", "joined.flac", "clean.wav", "clean.m4a",
                          "clean.opus", "cut.mp3", "clean.flac"]),
    cut=st.floats(0.0, 1.0),
    edits=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255),
                             st.integers(0, 2 * len(MARKERS))), max_size=8),
)  # fmt: skip
def test_reading_declared_lengths_never_fails_or_hangs_on_damaged_bytes(
    damaged_files, tmp_path, name, cut, edits
):
    with open(damaged_files[name], "rb") as f:
        data = _mutations(f.read(), cut, edits)
    path = os.path.join(tmp_path, "mutated")
    with open(path, "wb") as f:
        f.write(data)
    declared = declared_length(path)
    assert declared is None or (declared.seconds >= 0 and declared.found >= 0)
