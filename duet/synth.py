"""A tiny music synthesiser for the sample catalogue: genres differ in timbre, key, tempo,
scale and rhythm, so audio models and co-occurrence have something real to learn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "pentatonic": (0, 3, 5, 7, 10),
}


@dataclass(frozen=True)
class Genre:
    name: str
    tempo: tuple[float, float]
    scale: str
    harmonics: tuple[float, ...]
    attack: float
    release: float
    drums: str
    notes_per_beat: int
    noise: float
    octave: int


GENRES = (
    Genre("rock", (110, 140), "minor", (1, 0.6, 0.45, 0.3, 0.2, 0.12), 0.01, 0.10, "backbeat", 2, 0.02, 4),
    Genre("electronic", (120, 132), "minor", (1, 0.5, 0.33, 0.25, 0.2, 0.16, 0.14), 0.005, 0.05, "four", 4, 0.0, 4),
    Genre("jazz", (90, 160), "dorian", (1, 0.3, 0.1, 0.05), 0.02, 0.25, "swing", 3, 0.005, 4),
    Genre("classical", (60, 100), "major", (1, 0.4, 0.2, 0.1, 0.05), 0.08, 0.6, "none", 2, 0.0, 5),
    Genre("hiphop", (80, 98), "minor", (1, 0.2, 0.05), 0.01, 0.15, "boombap", 2, 0.01, 3),
    Genre("ambient", (60, 80), "pentatonic", (1, 0.15, 0.05), 0.8, 1.5, "none", 1, 0.01, 5),
    Genre("metal", (150, 190), "minor", (1, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2), 0.003, 0.05, "double", 4, 0.03, 3),
    Genre("folk", (85, 120), "major", (1, 0.5, 0.25, 0.12), 0.005, 0.4, "light", 2, 0.0, 4),
)  # fmt: skip


_TABLE_SIZE = 4096


def _wavetable(genre: Genre, max_harmonic: int) -> np.ndarray:
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    table = sum(
        (amp * np.sin(2 * np.pi * k * phase)
         for k, amp in enumerate(genre.harmonics[:max_harmonic], start=1)),
        np.zeros(_TABLE_SIZE),
    )  # fmt: skip
    return (table / sum(genre.harmonics)).astype(np.float32)


def _tone(freq: float, length: int, sr: int, genre: Genre, phase: float) -> np.ndarray:
    """One note from a wavetable oscillator (harmonics above Nyquist dropped), with an envelope."""
    harmonics = max(1, min(len(genre.harmonics), int(sr / 2 // freq)))
    table = _wavetable(genre, harmonics)
    step = freq * _TABLE_SIZE / sr
    index = (np.arange(length) * step + phase / (2 * np.pi) * _TABLE_SIZE).astype(np.int64)
    out = table[index & (_TABLE_SIZE - 1)]
    attack = max(1, min(length, int(genre.attack * sr)))
    release = max(1, min(length - attack, int(genre.release * sr))) if length > attack else 0
    out[:attack] *= np.linspace(0, 1, attack, dtype=np.float32)
    if release:
        out[length - release :] *= np.linspace(1, 0, release, dtype=np.float32)
    return out


def _drum(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    length = int(0.25 * sr)
    t = np.arange(length, dtype=np.float32) / np.float32(sr)
    if kind == "kick":
        freq = 110 * np.exp(-t * 18) + 45
        return np.sin(2 * np.pi * np.cumsum(freq) / sr).astype(np.float32) * np.exp(-t * 9)
    noise = rng.standard_normal(length).astype(np.float32)
    if kind == "snare":
        return (0.6 * noise + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 22)
    hat = np.diff(noise, prepend=np.float32(0))
    return 0.35 * hat * np.exp(-t * 70)


_PATTERNS: dict[str, dict[str, tuple[float, ...]]] = {
    "four": {"kick": (0, 1, 2, 3), "snare": (1, 3), "hat": (0.5, 1.5, 2.5, 3.5)},
    "backbeat": {"kick": (0, 2, 2.5), "snare": (1, 3), "hat": (0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5)},
    "swing": {"kick": (0, 2), "snare": (), "hat": (0, 1, 1.66, 2, 3, 3.66)},
    "boombap": {"kick": (0, 0.75, 2.5), "snare": (1, 3), "hat": (0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5)},
    "double": {"kick": tuple(i / 4 for i in range(16)), "snare": (1, 3), "hat": (0, 1, 2, 3)},
    "light": {"kick": (0, 2), "snare": (), "hat": (1, 3)},
    "none": {},
}


def render(
    genre: Genre,
    *,
    key: int,
    tempo: float,
    seconds: float,
    sr: int,
    channels: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Render a track: chords, bass, melody and drums; returns float32 ``[samples, channels]``."""  # fmt: skip
    n = int(seconds * sr)
    mix = np.zeros(n, dtype=np.float32)
    beat = 60.0 / tempo
    scale = SCALES[genre.scale]
    base = 440.0 * 2 ** ((key - 9) / 12 + genre.octave - 4)
    progression = rng.choice(len(scale), size=4)
    bar = 4 * beat
    for b in range(int(seconds / bar) + 1):
        degree = int(progression[b % 4])
        start = int(b * bar * sr)
        length = min(int(bar * sr), n - start)
        if length <= 0:
            break
        for interval in (0, 2, 4):
            step = scale[(degree + interval) % len(scale)] + 12 * (
                (degree + interval) // len(scale)
            )
            mix[start : start + length] += 0.12 * _tone(
                base * 2 ** (step / 12), length, sr, genre, rng.uniform(0, 6.28)
            )
        for q in range(4):
            s = start + int(q * beat * sr)
            ln = min(int(beat * sr * 0.9), n - s)
            if ln > 0:
                mix[s : s + ln] += 0.22 * _tone(
                    base / 2 * 2 ** (scale[degree] / 12), ln, sr, genre, 0.0
                )
    note = beat / genre.notes_per_beat
    for i in range(int(seconds / note)):
        if rng.random() < 0.3:
            continue
        s = int(i * note * sr)
        ln = min(int(note * sr * rng.uniform(0.6, 1.0)), n - s)
        if ln <= 0:
            break
        step = scale[int(rng.integers(len(scale)))] + 12 * int(rng.integers(0, 2))
        mix[s : s + ln] += 0.18 * _tone(base * 2 * 2 ** (step / 12), ln, sr, genre, 0.0)
    for kind, hits in _PATTERNS[genre.drums].items():
        sound = _drum(kind, sr, rng)
        for b in range(int(seconds / bar) + 1):
            for h in hits:
                s = int((b * 4 + h) * beat * sr)
                ln = min(len(sound), n - s)
                if ln > 0:
                    mix[s : s + ln] += 0.5 * sound[:ln]
    if genre.noise:
        mix += np.float32(genre.noise) * rng.standard_normal(n).astype(np.float32)
    mix *= np.float32(0.8 / max(1e-6, float(np.max(np.abs(mix)))))
    if channels == 1:
        return mix[:, None]
    delay = int(0.012 * sr)
    right = np.concatenate([np.zeros(delay, np.float32), mix[: n - delay]])
    return np.stack([mix, 0.8 * right + 0.2 * mix], axis=1)
