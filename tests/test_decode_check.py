"""A decode is checked against the length the file declares: joined, chained, cut and
understated files on real libsndfile and ffmpeg, and the clean file of every codec."""

import pytest

from duet.pipelines.audio.decode import decode_file

CLEAN = {"clean.mp3": "libsndfile", "clean.flac": "libsndfile", "clean.ogg": "libsndfile",
         "clean.opus": "libsndfile", "clean.wav": "libsndfile", "clean.m4a": "ffmpeg"}  # fmt: skip


@pytest.mark.parametrize("name", ["joined-same.mp3", "joined-rates.mp3", "joined-channels.mp3"])
def test_joined_mp3s_decode_whole_when_libsndfile_stops_after_the_first(damaged_files, name):
    decoded = decode_file(damaged_files[name], max_seconds=60)
    assert decoded.duration == pytest.approx(4.0, abs=0.1)
    assert decoded.decoder.startswith("ffmpeg") and decoded.decoded_again
    assert decoded.length_check == "ok" and decoded.declared == pytest.approx(4.0, abs=0.01)
    assert "libsndfile decoded 2.000 s, the file declares 4.000 s" in decoded.note
    assert "2 streams joined" in decoded.note


def test_joined_mp3s_keep_the_first_streams_rate_and_layout(damaged_files):
    assert decode_file(damaged_files["joined-rates.mp3"], max_seconds=60).sample_rate == 44100
    assert decode_file(damaged_files["joined-channels.mp3"], max_seconds=60).channels == 1


def test_chained_ogg_decodes_every_stream(damaged_files):
    decoded = decode_file(damaged_files["chained.ogg"], max_seconds=60)
    assert decoded.duration == pytest.approx(4.0, abs=0.1)
    assert decoded.length_check == "ok" and decoded.decoded_again
    assert "2 chained streams" in decoded.note


def test_joined_flac_decodes_every_stream(damaged_files):
    decoded = decode_file(damaged_files["joined.flac"], max_seconds=60)
    assert decoded.duration == pytest.approx(4.0, abs=0.1) and decoded.length_check == "ok"


def test_chained_ogg_no_decoder_reads_whole_is_short_with_the_reason(damaged_files):
    # ffmpeg refuses a channel change inside Ogg: the decode is what it is, and says so
    decoded = decode_file(damaged_files["chained-change.ogg"], max_seconds=60)
    assert decoded.duration < 3.0
    assert decoded.length_check == "short" and decoded.declared == pytest.approx(4.0, abs=0.01)
    assert "no decoder finds all the audio it declares" in decoded.note
    assert "ffmpeg: " in decoded.note


@pytest.mark.parametrize("decoder", ["auto", "ffmpeg"])
def test_mp3_cut_in_half_is_recorded_as_short(damaged_files, decoder):
    decoded = decode_file(damaged_files["cut.mp3"], max_seconds=60, decoder=decoder)
    assert decoded.duration == pytest.approx(2.0, abs=0.1)
    assert decoded.length_check == "short" and decoded.declared == pytest.approx(4.0, abs=0.01)
    assert "cut short" in decoded.note and "4.000 s declared" in decoded.note


@pytest.mark.parametrize("name", ["cut.wav", "cut.m4a"])
def test_other_cut_files_are_short(damaged_files, name):
    decoded = decode_file(damaged_files[name], max_seconds=60)
    assert decoded.duration == pytest.approx(1.0, abs=0.1)
    assert decoded.length_check == "short" and "cut short" in decoded.note


def test_decode_longer_than_declared_keeps_all_audio_and_is_long(damaged_files):
    # STREAMINFO declares 1 s, the frames hold 2 s: libsndfile stops at 1 s, ffmpeg reads all
    decoded = decode_file(damaged_files["understated.flac"], max_seconds=60)
    assert decoded.duration == pytest.approx(2.0, abs=0.01)
    assert decoded.length_check == "long" and decoded.declared == pytest.approx(1.0, abs=0.01)
    assert "its frames hold 2.000 s" in decoded.note


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_files_are_decoded_once_and_match_their_declared_length(damaged_files, name):
    decoded = decode_file(damaged_files[name], max_seconds=60)
    assert decoded.decoder.startswith(CLEAN[name]) and not decoded.decoded_again
    assert decoded.length_check == "ok" and decoded.note is None
    assert decoded.declared == pytest.approx(decoded.duration, abs=0.03)
    assert decoded.duration == pytest.approx(2.0, abs=0.03)


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_ffmpeg_decoder_agrees_with_the_declared_length_of_clean_files(damaged_files, name):
    decoded = decode_file(damaged_files[name], max_seconds=60, decoder="ffmpeg")
    assert decoded.length_check == "ok" and decoded.note is None


def test_an_undeclared_container_is_decoded_without_a_check(tmp_path, damaged_files):
    import soundfile

    path = str(tmp_path / "tone.aiff")
    soundfile.write(path, soundfile.read(damaged_files["clean.wav"])[0], 44100)
    decoded = decode_file(path, max_seconds=60)
    assert decoded.length_check is None and decoded.declared is None and decoded.note is None
