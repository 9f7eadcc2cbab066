"""Device-side features: the trainer's log-mel equals the shards' log-mel."""

import numpy as np
import torch


def test_device_mel_equals_the_shards_mel():
    from duet.pipelines.audio.mel import log_mel, presets
    from duet.training.features import LogMel

    rng = np.random.default_rng(0)
    t = np.arange(48000) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=len(t))).astype(np.float32)
    expected = log_mel(wave, presets()["choi"])
    got = LogMel("choi")(torch.from_numpy(wave)[None])[0].numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 0.05  # dB; float32 FFTs differ in the last bits
