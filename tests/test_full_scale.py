"""Samples beyond full scale are never clipped into the shards: over-range sources are scaled
by one recorded gain, and isolated outlier samples refuse the track with the reason."""

import io

import numpy as np
import pytest
import soundfile
import soxr

from duet.pipelines.audio.decode import AudioError, Decoded
from duet.pipelines.audio.track import AudioConfig, process_decoded, process_track

CONFIG = AudioConfig(wav_rates=(16000, 22050, 44100))


def stored(track, stream: str) -> np.ndarray:
    member = next(m for m in track.members if m.stream == stream)
    return np.load(io.BytesIO(member.data)).astype(np.float64) / 32767


@pytest.mark.parametrize("peak", [2.0, 8.0])
def test_float_source_beyond_full_scale_is_scaled_not_clipped(damaged_files, peak):
    track = process_track(damaged_files[f"peak{peak:g}.wav"], CONFIG)
    source = soundfile.read(damaged_files[f"peak{peak:g}.wav"], dtype="float32")[0]
    for rate in CONFIG.wav_rates:
        wav = stored(track, f"wav-{rate}")
        assert np.mean(np.abs(wav) >= 32766 / 32767) < 0.02, rate  # a tone's crests, not flat tops
        expected = soxr.resample(source, 44100, rate, quality="HQ") * track.info["gain"]
        np.testing.assert_allclose(wav, expected, atol=1.5 / 32767)
    assert track.info["gain"] == pytest.approx(1 / peak, rel=0.01)


@pytest.mark.parametrize(("peak", "share"), [(2.0, 2 / 3), (8.0, 0.92)])
def test_clipped_counts_the_source_samples_beyond_full_scale(damaged_files, peak, share):
    track = process_track(damaged_files[f"peak{peak:g}.wav"], CONFIG)
    assert track.info["clipped"] / (2 * 44100) == pytest.approx(share, abs=0.01)


def test_one_stray_sample_refuses_the_track_with_where_and_how_big(damaged_files):
    with pytest.raises(AudioError, match="isolated sample") as info:
        process_track(damaged_files["stray.wav"], CONFIG)
    assert info.value.stage == "validate"
    assert "1e+30" in info.value.message and "0.680 s" in info.value.message


def test_a_stray_sample_in_loud_audio_is_refused_too():
    t = np.arange(44100) / 44100
    samples = (2.0 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    samples[1000] = 1e30
    with pytest.raises(AudioError, match="1 isolated sample"):
        process_decoded(Decoded(samples, 44100, 1, "test"), CONFIG)


def test_a_tone_at_a_quarter_of_the_rate_is_audio_not_outliers():
    # every other sample is 0, so each peak has silent direct neighbours: still audio
    samples = (1.5 * np.cos(np.pi / 2 * np.arange(44100))).astype(np.float32)
    track = process_decoded(Decoded(samples, 44100, 1, "test"), CONFIG)
    assert track.info["gain"] == pytest.approx(1 / 1.5, rel=1e-3)


def test_in_range_source_is_untouched(damaged_files):
    track = process_track(damaged_files["clean.wav"], CONFIG)
    assert track.info["gain"] == 1.0 and track.info["clipped"] == 0
    pcm = soundfile.read(damaged_files["clean.wav"], dtype="int16")[0].astype(np.int32)
    mono = np.rint((pcm[:, 0] + pcm[:, 1]) / 2 / 32768 * 32767)
    np.testing.assert_allclose(stored(track, "wav-44100") * 32767, mono, atol=1)


def test_resampling_overshoot_of_a_full_scale_source_is_scaled_not_clipped():
    square = np.sign(np.sin(2 * np.pi * 1000 * np.arange(44100) / 44100)).astype(np.float32)
    square *= np.float32(0.999)
    track = process_decoded(Decoded(square, 44100, 1, "test"), CONFIG)
    assert track.info["clipped"] == 0 and track.info["gain"] < 0.95
    expected = soxr.resample(square, 44100, 16000, quality="HQ") * track.info["gain"]
    np.testing.assert_allclose(stored(track, "wav-16000"), expected, atol=1.5 / 32767)
