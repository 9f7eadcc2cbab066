"""One track, end to end: decode → validate → excerpt → resample → log-mel → encoded members.

Pure functions with no Beam in sight; the shards job calls ``process_track`` per track.

Nothing lossy is hidden. Samples beyond full scale (|x| > 1: float sources, lossy decoders'
overshoot, resampling's inter-sample peaks) are never clipped into int16: every stream of the
track is scaled by one ``gain`` = 1 / (its largest peak) and the gain is recorded, with the
number of source samples that were beyond full scale (``clipped``). A track whose over-range
part is only isolated outliers (a sample ≥ 4× every sample within 4 of it — a stray 1e30, a
corrupt float — which scaling would turn into near-silence and resampling into long ringing)
is refused with the reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import soundfile
import soxr

from duet.pipelines.audio.decode import AudioError, Decoded, decode_uri
from duet.pipelines.audio.mel import MelProfile, log_mels
from duet.pipelines.shardset.member import Member, mel_member, npy_bytes

WAV_FORMATS = ("npy", "flac")
_FP16_MAX = 65504.0
OUTLIER_RATIO = 4.0
"""An over-range sample this many times larger than every neighbour within OUTLIER_REACH is
an outlier: band-limited audio cannot jump 12 dB above all of its 8 neighbours."""
OUTLIER_REACH = 4


@dataclass(frozen=True)
class AudioConfig:
    """Everything that decides the bytes of a track's members (hashed into shard fingerprints)."""

    wav_rates: tuple[int, ...] = (16000, 22050)
    profiles: tuple[MelProfile, ...] = ()
    wav_format: str = "npy"
    max_seconds: float | None = None
    max_duration: float = 3600.0
    min_seconds: float = 1.0
    min_sample_rate: int = 8000
    silence_dbfs: float = -90.0
    decoder: str = "auto"
    decode_timeout: float = 600.0

    def __post_init__(self):
        if self.wav_format not in WAV_FORMATS:
            raise ValueError(f"wav format must be one of {WAV_FORMATS}, not {self.wav_format!r}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError("--max-seconds must be positive")
        if not self.wav_rates and not self.profiles:
            raise ValueError("no streams requested")

    @property
    def streams(self) -> list[str]:
        return [f"wav-{r}" for r in self.wav_rates] + [p.stream for p in self.profiles]

    def to_dict(self) -> dict:
        return {
            "wav_rates": list(self.wav_rates),
            "profiles": [p.to_dict() for p in self.profiles],
            "wav_format": self.wav_format,
            "max_seconds": self.max_seconds,
            "max_duration": self.max_duration,
            "min_seconds": self.min_seconds,
            "min_sample_rate": self.min_sample_rate,
            "silence_dbfs": self.silence_dbfs,
            "decoder": self.decoder,
        }


@dataclass
class ProcessedTrack:
    members: list[Member]
    info: dict
    mels: dict[str, np.ndarray] = field(default_factory=dict)


def to_int16(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """Quantise to int16 (round half to even, clip); return the array and the clipped count."""
    scaled = np.rint(samples * np.float32(32767.0))
    clipped = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    return np.clip(scaled, -32768, 32767).astype(np.int16), clipped


def flac_bytes(pcm: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, pcm, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def validate(decoded: Decoded, config: AudioConfig) -> float:
    """Refuse audio no trainer should see, with the reason; return the peak |sample|."""
    if decoded.sample_rate < config.min_sample_rate:
        raise AudioError(
            "validate", f"sample rate {decoded.sample_rate} Hz is below {config.min_sample_rate} Hz"
        )
    if len(decoded.samples) == 0:
        raise AudioError("validate", "no audio samples decoded")
    low, high = float(np.min(decoded.samples)), float(np.max(decoded.samples))
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int(np.count_nonzero(~np.isfinite(decoded.samples)))
        raise AudioError("validate", f"{bad} non-finite sample(s) (NaN/inf)")
    if decoded.duration < config.min_seconds:
        raise AudioError(
            "validate", f"too short: {decoded.duration:.3f} s < {config.min_seconds:g} s"
        )
    peak = max(abs(low), abs(high))
    if peak <= 10.0 ** (config.silence_dbfs / 20.0):
        level = "-inf" if peak == 0 else f"{20 * np.log10(peak):.1f}"
        raise AudioError("validate", f"silent: peak {level} dBFS <= {config.silence_dbfs:g} dBFS")
    return peak


def over_range(samples: np.ndarray, sample_rate: int, peak: float) -> int:
    """How many samples lie beyond full scale (|x| > 1); AudioError if any of them is an
    isolated outlier (see OUTLIER_RATIO). ``peak`` is max |x| (from ``validate``)."""
    if peak <= 1.0:
        return 0
    magnitude = np.abs(samples)
    over = np.flatnonzero(magnitude > 1.0)
    padded = np.pad(magnitude, OUTLIER_REACH)
    neighbours = np.zeros(len(over), np.float32)
    for shift in range(1, OUTLIER_REACH + 1):
        np.maximum(neighbours, padded[over + OUTLIER_REACH - shift], out=neighbours)
        np.maximum(neighbours, padded[over + OUTLIER_REACH + shift], out=neighbours)
    outliers = over[magnitude[over] > OUTLIER_RATIO * neighbours]
    if len(outliers):
        first, worst = outliers[0], float(magnitude[outliers].max())
        raise AudioError(
            "validate",
            f"over-range outliers: {len(outliers)} isolated sample(s) beyond full scale, up to "
            f"{worst:.3g}, the first at {first / sample_rate:.3f} s, with neighbours at most "
            f"{float(neighbours[over == first][0]):.3g}: corrupt samples, not audio (repair the "
            "source or remove them)",
        )
    return len(over)


def centred_excerpt(
    samples: np.ndarray, sample_rate: int, seconds: float | None
) -> tuple[np.ndarray, int]:
    """The centred ``seconds`` of ``samples`` (all of it when shorter) and its start sample."""
    if seconds is None:
        return samples, 0
    length = int(round(seconds * sample_rate))
    if len(samples) <= length:
        return samples, 0
    start = (len(samples) - length) // 2
    return samples[start : start + length], start


def quantise(native: np.ndarray, native_rate: int, rates: list[int]) -> tuple[dict, float]:
    """int16 PCM of ``native`` at each of ``rates`` (soxr HQ) and the gain applied to all of
    them: 1.0, or 1 / the largest peak when any would go beyond full scale (never clipped)."""

    pcm: dict[int, np.ndarray] = {}
    resampled: dict[int, np.ndarray] = {}
    over = False
    for rate in rates:
        resampled[rate] = (
            native
            if rate == native_rate
            else soxr.resample(native, native_rate, rate, quality="HQ")
        )
        pcm[rate], clipped = to_int16(resampled[rate])
        over = over or clipped > 0
    if not over:
        return pcm, 1.0
    gain = np.float32(1.0 / max(float(np.max(np.abs(r))) for r in resampled.values()))
    return {rate: to_int16(r * gain)[0] for rate, r in resampled.items()}, float(gain)


def process_decoded(decoded: Decoded, config: AudioConfig) -> ProcessedTrack:
    """Validate, excerpt, resample and featurise an already decoded track."""
    peak = validate(decoded, config)
    clipped = over_range(decoded.samples, decoded.sample_rate, peak)
    native, start = centred_excerpt(decoded.samples, decoded.sample_rate, config.max_seconds)
    rates = list(dict.fromkeys([*config.wav_rates, *(p.sample_rate for p in config.profiles)]))
    pcm, gain = quantise(native, decoded.sample_rate, rates)
    del native
    info = {
        "source_sample_rate": decoded.sample_rate,
        "source_channels": decoded.channels,
        "source_duration": round(decoded.duration, 6),
        "declared_duration": decoded.declared,
        "length_check": decoded.length_check,
        "excerpt_start": round(start / decoded.sample_rate, 6),
        "decoder": decoded.decoder,
        "decode_note": decoded.note,
        "decoded_again": decoded.decoded_again,
        "decode_warnings": len(decoded.warnings),
        "clipped": clipped,
        "gain": gain,
    }
    members: list[Member] = []
    for rate in config.wav_rates:
        samples = pcm[rate]
        if config.wav_format == "npy":
            data, header = npy_bytes(samples)
        else:
            data, header = flac_bytes(samples, rate), 0
        members.append(Member(
            stream=f"wav-{rate}", extension=config.wav_format, data=data, payload_offset=header,
            format=config.wav_format, dtype="int16", sample_rate=rate,
            duration=len(samples) / rate, samples=len(samples),
        ))  # fmt: skip
    mels: dict[str, np.ndarray] = {}
    for rate in dict.fromkeys(p.sample_rate for p in config.profiles):
        group = [p for p in config.profiles if p.sample_rate == rate]
        signal = pcm[rate].astype(np.float32) / np.float32(32767.0)
        for name, feats in log_mels(signal, group).items():
            mels[name] = np.clip(feats, -_FP16_MAX, _FP16_MAX).astype(np.float16)
        del signal
    for profile in config.profiles:
        duration = len(pcm[profile.sample_rate]) / profile.sample_rate
        members.append(mel_member(profile.stream, profile.name, profile.sample_rate, duration,
                                  mels[profile.name]))  # fmt: skip
    return ProcessedTrack(members, info, mels)


def process_track(uri: str, config: AudioConfig) -> ProcessedTrack:
    """Decode ``uri`` once and produce every requested stream's member; AudioError on bad input."""
    decoded = decode_uri(
        uri, max_seconds=config.max_duration, timeout=config.decode_timeout, decoder=config.decoder
    )
    return process_decoded(decoded, config)
