"""The HEAR API over duet checkpoints, checked the way the HEAR validator checks a submission:
the module's functions, the model's attributes, shapes, dtypes, timestamps in milliseconds and
a batch of different content."""

import os

import numpy as np
import pytest
import soxr
import torch

from duet.errors import DuetError
from duet.training import checkpoint, hear
from duet.training.loop import TrainConfig, train

HEAR_RATES = (16000, 22050, 32000, 44100, 48000)


@pytest.fixture(scope="module")
def alonso_checkpoint(dataset, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("hear") / "alonso")
    train(TrainConfig(recipe="alonso-co", data=dataset, out=out, epochs=1, batch_size=2,
                      workers=0, progress=False, max_steps=1), {"warmup_steps": 2})  # fmt: skip
    return os.path.join(out, "checkpoint.pt")


def sounds(rate: int, seconds: float) -> torch.Tensor:
    """Three different sounds of one length: noise, a 440 Hz tone, silence."""
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(0)
    rows = [0.3 * rng.standard_normal(len(t)), 0.5 * np.sin(2 * np.pi * 440 * t), np.zeros(len(t))]
    return torch.from_numpy(np.stack(rows).astype(np.float32))


def test_the_module_and_model_have_the_hear_api(alonso_checkpoint):
    for name in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
        assert callable(getattr(hear, name))
    model = hear.load_model(alonso_checkpoint)
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate in HEAR_RATES and model.sample_rate == 16000
    assert isinstance(model.scene_embedding_size, int) and model.scene_embedding_size == 512
    assert isinstance(model.timestamp_embedding_size, int) and model.timestamp_embedding_size == 512


def test_timestamp_embeddings_shapes_dtypes_and_milliseconds(alonso_checkpoint):
    model = hear.load_model(alonso_checkpoint)
    audio = sounds(model.sample_rate, 1.3)
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert embeddings.dtype == torch.float32 and timestamps.dtype == torch.float32
    assert embeddings.shape == (3, timestamps.shape[1], model.timestamp_embedding_size)
    assert timestamps.shape == (3, 27)  # 0, 50, ..., 1300 ms
    assert timestamps[0, 0] == 0 and torch.allclose(timestamps[:, 1:] - timestamps[:, :-1],
                                                    torch.tensor(50.0))  # fmt: skip
    assert float(timestamps.max()) <= 1300.0
    assert torch.isfinite(embeddings).all()


def test_a_batch_of_different_sounds_gives_each_its_own_embedding(alonso_checkpoint):
    model = hear.load_model(alonso_checkpoint)
    audio = sounds(model.sample_rate, 1.0)
    scene = hear.get_scene_embeddings(audio, model)
    assert scene.shape == (3, model.scene_embedding_size) and scene.dtype == torch.float32
    assert not torch.allclose(scene[0], scene[1]) and not torch.allclose(scene[1], scene[2])
    alone = hear.get_scene_embeddings(audio[1:2], model)  # batch position does not matter
    assert torch.allclose(alone[0], scene[1], atol=1e-5)
    frames, _ = hear.get_timestamp_embeddings(audio, model)
    alone_frames, _ = hear.get_timestamp_embeddings(audio[2:3], model)
    assert torch.allclose(alone_frames[0], frames[2], atol=1e-5)


def test_audio_at_another_rate_is_resampled_to_the_models(alonso_checkpoint):
    model = hear.load_model(alonso_checkpoint)
    audio = sounds(44100, 1.0)
    resampled = torch.from_numpy(np.stack([soxr.resample(a.numpy(), 44100, 16000, quality="HQ")
                                           for a in audio]))  # fmt: skip
    got = hear.get_scene_embeddings(audio, model, sample_rate=44100)
    assert torch.allclose(got, hear.get_scene_embeddings(resampled, model), atol=1e-5)


def test_a_sound_shorter_than_a_window_still_embeds(alonso_checkpoint):
    model = hear.load_model(alonso_checkpoint)
    scene = hear.get_scene_embeddings(sounds(model.sample_rate, 0.2), model)
    assert scene.shape == (3, model.scene_embedding_size) and torch.isfinite(scene).all()


def test_a_checkpoint_without_band_statistics_needs_its_dataset(alonso_checkpoint, dataset,
                                                                 tmp_path):  # fmt: skip
    with open(alonso_checkpoint, "rb") as f:
        saved = checkpoint.loads(f.read(), alonso_checkpoint)
    older = str(tmp_path / "older.pt")
    with open(older, "wb") as f:
        f.write(checkpoint.dumps({k: v for k, v in saved.items() if k != "stats"}))
    with pytest.raises(DuetError, match="no band statistics of mel-alonso"):
        hear.load_model(older)
    assert hear.load_model(older, data_uri=dataset).scene_embedding_size == 512


def test_a_waveform_model_embeds_at_its_training_rate(dataset, tmp_path):
    out = str(tmp_path / "clmr")
    train(TrainConfig(recipe="clmr", data=dataset, out=out, epochs=1, batch_size=2, workers=0,
                      progress=False, max_steps=1))  # fmt: skip
    model = hear.load_model(os.path.join(out, "checkpoint.pt"), hop_ms=250.0)
    assert model.sample_rate == 22050 and model.scene_embedding_size == 512
    embeddings, timestamps = hear.get_timestamp_embeddings(sounds(22050, 0.5), model)
    assert embeddings.shape == (3, 3, 512) and timestamps[0].tolist() == [0.0, 250.0, 500.0]
