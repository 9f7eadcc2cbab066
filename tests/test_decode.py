"""ffmpeg decoding of real files: every codec, channel layout and kind of bad input."""

import numpy as np
import pytest
import soundfile

from duet.pipelines.audio.decode import AudioError, decode_file, decode_uri

CODECS = ["mp3", "flac", "ogg", "wav", "m4a"]


@pytest.mark.parametrize("decoder", ["auto", "ffmpeg"])
@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_decodes_to_mono_at_native_rate(audio_files, codec, decoder):
    decoded = decode_file(audio_files[codec], max_seconds=60, decoder=decoder)
    assert decoded.sample_rate == 44100
    assert decoded.channels == 2
    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert decoded.duration == pytest.approx(6.0, abs=0.05)


@pytest.mark.parametrize("codec", CODECS)
def test_libsndfile_and_ffmpeg_give_the_same_samples(audio_files, codec):
    fast = decode_file(audio_files[codec], max_seconds=60)
    reference = decode_file(audio_files[codec], max_seconds=60, decoder="ffmpeg")
    assert len(fast.samples) == len(reference.samples)
    np.testing.assert_allclose(fast.samples, reference.samples, atol=1e-5)


@pytest.mark.parametrize(("codec", "decoder"), [("mp3", "libsndfile"), ("flac", "libsndfile"),
                                                ("ogg", "libsndfile"), ("m4a", "ffmpeg")])  # fmt: skip
def test_auto_uses_libsndfile_where_it_can_and_ffmpeg_elsewhere(audio_files, codec, decoder):
    assert decode_file(audio_files[codec], max_seconds=60).decoder.startswith(decoder)


def test_stereo_downmix_is_the_mean_of_channels(audio_files):
    stereo, _ = soundfile.read(audio_files["wav"], dtype="float32")
    decoded = decode_file(audio_files["wav"], max_seconds=60)
    np.testing.assert_allclose(decoded.samples, stereo.mean(axis=1), atol=1e-6)


def test_six_channels_are_downmixed(audio_files):
    decoded = decode_file(audio_files["6ch"], max_seconds=60)
    assert decoded.channels == 6 and decoded.duration == pytest.approx(3.0)


def test_eight_khz_source_keeps_its_rate(audio_files):
    assert decode_file(audio_files["8k"], max_seconds=60).sample_rate == 8000


@pytest.mark.parametrize(
    ("name", "stage", "reason"),
    [
        ("empty", "read", "empty file"),
        ("text", "decode", "not a readable audio file"),
        ("truncated", "decode", "not a readable audio file"),
        ("unsupported", "decode", "unsupported codec"),
        ("video_only", "decode", "no audio stream"),
    ],
)
@pytest.mark.parametrize("decoder", ["auto", "ffmpeg"])
def test_bad_files_raise_a_precise_reason(audio_files, name, stage, reason, decoder):
    with pytest.raises(AudioError, match=reason) as info:
        decode_file(audio_files[name], max_seconds=60, decoder=decoder)
    assert info.value.stage == stage


@pytest.mark.parametrize("decoder", ["auto", "ffmpeg"])
def test_over_long_track_is_refused_at_the_cap(audio_files, decoder):
    with pytest.raises(AudioError, match="over-long: more than 5 s") as info:
        decode_file(audio_files["long"], max_seconds=5, decoder=decoder)
    assert info.value.stage == "validate"


def test_missing_file_is_a_read_failure(tmp_path):
    with pytest.raises(AudioError, match="no such file") as info:
        decode_uri(str(tmp_path / "absent.mp3"), max_seconds=10)
    assert info.value.stage == "read"


def test_hanging_decode_is_killed_after_the_timeout(audio_files):
    with pytest.raises(AudioError, match="timed out"):
        decode_file(audio_files["long"], max_seconds=600, timeout=0.001, decoder="ffmpeg")


def test_path_is_never_interpreted_as_an_ffmpeg_protocol(tmp_path, audio_files):
    odd = tmp_path / "concat:x|y.m4a"
    with open(audio_files["m4a"], "rb") as f:
        odd.write_bytes(f.read())
    assert decode_file(str(odd), max_seconds=10, decoder="ffmpeg").duration == pytest.approx(
        6.0, abs=0.05
    )
