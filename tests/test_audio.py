"""Per-track processing: validation, excerpt, resampling, quantisation, members."""

import io
import json

import numpy as np
import pytest

from duet.pipelines.audio.decode import AudioError, Decoded
from duet.pipelines.audio.mel import log_mel, presets
from duet.pipelines.audio.track import (
    AudioConfig,
    centred_excerpt,
    process_decoded,
    process_track,
    to_int16,
)
from duet.pipelines.shardset.member import sidecar_bytes

ALONSO = presets()["alonso"]


def decoded(seconds=4.0, sr=44100, value=None) -> Decoded:
    t = np.arange(int(seconds * sr)) / sr
    samples = (
        (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
        if value is None
        else np.full(len(t), value, np.float32)
    )
    return Decoded(samples, sr, 2, "test")


def test_streams_have_the_requested_rates_and_lengths():
    track = process_decoded(decoded(4.0), AudioConfig(profiles=(ALONSO,)))
    by_stream = {m.stream: m for m in track.members}
    assert by_stream["wav-16000"].samples == 64000
    assert by_stream["wav-22050"].samples == 88200
    assert by_stream["mel-alonso"].frames == 1 + 64000 // 256
    assert by_stream["mel-alonso"].n_mels == 96


def test_mel_is_computed_from_the_stored_16k_waveform():
    track = process_decoded(decoded(3.0), AudioConfig(profiles=(ALONSO,)))
    by_stream = {m.stream: m for m in track.members}
    wav = np.load(io.BytesIO(by_stream["wav-16000"].data))
    stored = np.load(io.BytesIO(by_stream["mel-alonso"].data))
    expected = log_mel(wav.astype(np.float32) / np.float32(32767), ALONSO).astype(np.float16)
    np.testing.assert_array_equal(stored, expected)


def test_mel_member_is_time_major_float16_npy():
    track = process_decoded(decoded(2.0), AudioConfig(profiles=(ALONSO,)))
    member = next(m for m in track.members if m.stream == "mel-alonso")
    array = np.load(io.BytesIO(member.data), allow_pickle=False)
    assert array.dtype == np.float16 and array.shape == (member.frames, 96)
    assert member.data[member.payload_offset :] == array.tobytes()


def test_flac_waveforms_decode_to_the_npy_samples():
    import soundfile

    npy = process_decoded(decoded(2.0), AudioConfig(wav_format="npy"))
    flac = process_decoded(decoded(2.0), AudioConfig(wav_format="flac"))
    for a, b in zip(npy.members, flac.members, strict=True):
        pcm = soundfile.read(io.BytesIO(b.data), dtype="int16")[0]
        np.testing.assert_array_equal(np.load(io.BytesIO(a.data)), pcm)


def test_centred_excerpt_takes_the_middle():
    samples = np.arange(100, dtype=np.float32)
    excerpt, start = centred_excerpt(samples, 10, 3.0)
    assert start == 35 and excerpt[0] == 35 and len(excerpt) == 30
    assert centred_excerpt(samples, 10, 20.0)[1] == 0


def test_max_seconds_keeps_a_centred_excerpt():
    track = process_decoded(decoded(10.0), AudioConfig(max_seconds=4.0))
    assert track.info["excerpt_start"] == pytest.approx(3.0)
    assert all(m.duration == pytest.approx(4.0) for m in track.members)


def test_int16_quantisation_counts_clipping():
    pcm, clipped = to_int16(np.array([0.0, 0.5, 1.2, -1.5], np.float32))
    assert pcm.tolist() == [0, 16384, 32767, -32768] and clipped == 2


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: decoded(value=0.0), "silent"),
        (lambda: decoded(seconds=0.5), "too short"),
        (lambda: Decoded(np.full(8000, np.nan, np.float32), 8000, 1, "test"), "non-finite"),
        (lambda: Decoded(np.ones(4000, np.float32) * 0.1, 4000, 1, "test"), "below 8000 Hz"),
    ],
)
def test_unusable_audio_is_refused_with_its_reason(make, reason):
    with pytest.raises(AudioError, match=reason) as info:
        process_decoded(make(), AudioConfig())
    assert info.value.stage == "validate"


def test_nan_file_is_refused(audio_files):
    with pytest.raises(AudioError, match="non-finite"):
        process_track(audio_files["nan"], AudioConfig())


def test_sidecar_names_the_real_track_id_and_source():
    track = process_decoded(decoded(2.0), AudioConfig())
    body = json.loads(sidecar_bytes("../evil\u00e9", track.members[0], track.info))
    assert body["track_id"] == "../evil\u00e9"
    assert body["source_sample_rate"] == 44100 and body["source_channels"] == 2
