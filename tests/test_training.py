"""The thin trainer: losses, augmentations, the data layer's work split, and training runs
through the real data layer — locally and from a real S3 endpoint on loopback — with exact
resume."""

import math
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from duet import schemas
from duet.cli import main
from duet.training import augment, checkpoint, data, losses
from duet.training.loop import TrainConfig, train
from duet.training.store import ByteCache, Store
from tests.test_object_storage import BUCKET, s3  # noqa: F401  (the moto fixture)

STRATEGIES = "playlist_co,playlist_tco,artist_co,w2v,self,self_mel"
FAST = {"warmup_steps": 2, "backbone": "vggish"}


# ---------------------------------------------------------------- losses and augmentations


def test_nt_xent_matches_its_direct_formula():
    a, b = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    z = torch.nn.functional.normalize(torch.cat([a, b]), dim=1)
    tau, total = 0.5, 0.0
    for i in range(4):
        partner = (i + 2) % 4
        others = [math.exp(float(z[i] @ z[k]) / tau) for k in range(4) if k != i]
        total += -math.log(math.exp(float(z[i] @ z[partner]) / tau) / sum(others))
    assert float(losses.nt_xent(a, b, tau)) == pytest.approx(total / 4, rel=1e-6)


def test_pitch_shift_moves_a_tone_by_the_semitones_and_keeps_the_length():
    sr = 22050
    t = torch.arange(sr) / sr
    tone = torch.sin(2 * math.pi * 440 * t)[None, :]
    shifted = augment.pitch_shift(tone, 12)
    assert shifted.shape == tone.shape
    spectrum = torch.fft.rfft(shifted[0, 2048:-2048]).abs()
    peak = float(spectrum.argmax()) * sr / (sr - 4096)
    assert abs(peak - 880) < 15


def test_clmr_chain_is_repeatable_from_its_generator():
    x = torch.randn(6, 59049) * 0.1
    one = augment.clmr_chain(x.clone(), 22050, torch.Generator().manual_seed(3))
    two = augment.clmr_chain(x.clone(), 22050, torch.Generator().manual_seed(3))
    three = augment.clmr_chain(x.clone(), 22050, torch.Generator().manual_seed(4))
    assert torch.equal(one, two) and not torch.equal(one, three) and torch.isfinite(one).all()


def test_simclr_mix_gains_follow_beta_5_2():
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0))
    gains = augment._beta_5_2(u)
    assert float(gains.mean()) == pytest.approx(5 / 7, abs=0.01)
    patches = torch.randn(8, 4, 3)
    mixed = augment.simclr_mix(patches, torch.Generator().manual_seed(1))
    assert mixed.shape == patches.shape and not torch.equal(mixed, patches)


def test_byte_cache_is_bounded_and_least_recently_used():
    cache = ByteCache(10)
    cache.put(("a",), b"12345")
    cache.put(("b",), b"12345")
    assert cache.get(("a",)) == b"12345"
    cache.put(("c",), b"12345")
    assert cache.get(("b",)) is None and cache.get(("a",)) is not None


def test_recipe_overrides_parse_numbers_and_reject_unknown_settings():
    from duet.training.loop import parse_overrides

    got = parse_overrides(["lr=1e-3", "multi_level=true", "backbone=resnet50", "epochs=3"])
    assert got == {"lr": 0.001, "multi_level": True, "backbone": "resnet50", "epochs": 3}
    with pytest.raises(SystemExit, match="unknown recipe setting"):
        parse_overrides(["lrr=1e-3"])
    with pytest.raises(SystemExit, match="key=value"):
        parse_overrides(["lr"])


def test_shard_cache_is_bounded_and_drops_the_oldest_fetch(tmp_path):
    from duet.training.store import ShardCache

    cache = ShardCache(str(tmp_path / "c"), max_bytes=250)

    def download(uri, target):
        with open(target, "wb") as f:
            f.write(uri.encode()[:1] * 100)

    for i, uri in enumerate(("a://1", "b://2", "c://3")):
        cache.fetch(uri, download)
        cache._pool.shutdown(wait=True)
        cache._pool = type(cache._pool)(max_workers=1)
        os.utime(cache.local(uri), (1000 + i, 1000 + i))
    assert cache.fetched == 3 and cache.pread("a://1", 0, 4) is None
    assert cache.pread("b://2", 10, 4) == b"bbbb" and cache.pread("c://3", 0, 2) == b"cc"
    assert sorted(os.listdir(tmp_path / "c")) == sorted(
        [os.path.basename(cache.local("b://2")), os.path.basename(cache.local("c://3"))]
    )


# ---------------------------------------------------------------- a published dataset


@pytest.fixture(scope="module")
def dataset(catalog, published, tmp_path_factory):
    """The sample catalogue through every job: shards → tables → pairs (2 epochs)."""
    root = str(tmp_path_factory.mktemp("train") / "data")
    shutil.copytree(published, root)
    for argv in (
        ["playlists", "--input", os.path.join(catalog, "mpd"), "--format", "mpd", "--output", root,
         "--tracks", root],
        ["cooccurrence", "--playlists", os.path.join(root, "playlists.parquet"), "--output", root],
        ["embeddings", "w2v", "--playlists", os.path.join(root, "playlists.parquet"), "--output",
         root, "--deterministic", "--epochs", "2"],
        ["pairs", "--data", root, "--strategies", STRATEGIES, "--epochs", "0:2", "--seed", "1"],
    ):  # fmt: skip
        assert main(argv) == 0
    return root


def test_each_rank_and_worker_gets_distinct_rows_without_gaps(dataset):
    root = data.Root(Store(dataset))
    run = root.latest_run()
    views = (data.View("a", stream="wav-22050", length=1000),)
    seen = []
    for rank in range(2):
        batches = data.EpochBatches(root, run, "self", 0, views, 2, 0, rank=rank, world=2)
        for b in range(batches.batches):
            seen += data.batch_rows(b, 2, rank, 2).tolist()
    rows = root.manifest(run, "self", 0).num_rows
    assert len(seen) == len(set(seen)) and set(seen) == set(range(len(seen)))
    assert rows - len(seen) < 2 * 2  # only the tail that cannot fill a batch on every rank


def test_a_missing_member_is_skipped_and_counted_not_fatal(dataset):
    root = data.Root(Store(dataset))
    run = root.latest_run()
    victim = next(iter(root.members["wav-22050"]))
    del root.members["wav-22050"][victim]
    views = (data.View("a", stream="wav-22050", length=1000),)
    batches = data.EpochBatches(root, run, "self", 0, views, 3, 0)
    got = [b for b in batches if not b.get("empty")]
    assert batches.counters.skipped == 1 and victim not in sum((b["ids"] for b in got), [])
    assert sum(b["skipped"] for b in got) == 1


def test_sha256_is_verified_on_demand(dataset, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(dataset, copy)
    root = data.Root(Store(copy))
    track, member = next(iter(root.members["mel-alonso"].items()))
    with open(os.path.join(copy, member.shard), "r+b") as f:
        f.seek(member.start + 10)
        f.write(b"\xff\xff")
    root.read_window("mel-alonso", track, 0, 4)
    with pytest.raises(data.MemberError, match="sha256"):
        root.read_window("mel-alonso", track, 0, 4, verify=True)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["alonso-co", "alonso-tco", "alonso-artist", "alonso-w2v",
                                    "alonso-simclr", "clmr"])  # fmt: skip
def test_every_recipe_trains_two_epochs_from_s3(recipe, dataset, s3, tmp_path):  # noqa: F811
    prefix = f"train-{recipe}"
    remote = s3.upload(dataset, prefix)
    out = str(tmp_path / "out")
    summary = train(TrainConfig(recipe=recipe, data=remote, out=out, epochs=2, batch_size=2,
                                workers=0, endpoint_url=s3.endpoint, progress=False),
                    {**FAST, "backbone": "samplecnn" if recipe == "clmr" else "vggish"})  # fmt: skip
    assert summary["state"]["epoch"] == 2 and math.isfinite(summary["loss"])
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [line for line in f if line.strip()]
    assert len(records) == summary["state"]["global_step"] > 0


def test_shard_cache_fetches_a_shard_once_then_reads_it_locally(dataset, s3, tmp_path):  # noqa: F811
    import time

    remote = s3.upload(dataset, "shard-cache")
    store = Store(remote, endpoint_url=s3.endpoint, cache_bytes=0,
                  shard_cache=str(tmp_path / "shards"))  # fmt: skip
    root = data.Root(store)
    track, member = next(iter(root.members["mel-alonso"].items()))
    first = root.read_window("mel-alonso", track, 0, 8)
    deadline = time.monotonic() + 30
    while store.shards.fetched == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.shards.fetched == 1
    s3.client.delete_object(Bucket=BUCKET, Key=f"shard-cache/{member.shard}")
    assert np.array_equal(root.read_window("mel-alonso", track, 0, 8), first)  # local now
    root.read_window("mel-alonso", track, 0, member.length, verify=True)  # whole member, sha256


def test_resume_continues_exactly_like_an_uninterrupted_run(dataset, s3, tmp_path):  # noqa: F811
    remote = s3.upload(dataset, "train-resume")
    common = {"recipe": "alonso-co", "data": remote, "epochs": 2, "batch_size": 2, "workers": 0,
              "endpoint_url": s3.endpoint, "progress": False}  # fmt: skip
    whole = str(tmp_path / "whole")
    train(TrainConfig(out=f"s3://{BUCKET}/ckpt-whole", **common), FAST)
    first = train(TrainConfig(out=str(tmp_path / "split"), max_steps=3, **common), FAST)
    assert first["stopped"] == "max_steps"
    train(TrainConfig(out=str(tmp_path / "split"), resume=True, **common), FAST)

    def weights(blob: bytes) -> dict:
        return checkpoint.loads(blob, "test")["model"]

    resumed = weights((tmp_path / "split" / "checkpoint.pt").read_bytes())
    straight = weights(
        s3.client.get_object(Bucket=BUCKET, Key="ckpt-whole/checkpoint.pt")["Body"].read()
    )
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in resumed)
    assert not os.path.exists(whole)


def test_embed_writes_one_vector_per_track(dataset, tmp_path):
    out = str(tmp_path / "m")
    train(TrainConfig(recipe="alonso-co", data=dataset, out=out, epochs=1, batch_size=2, workers=0,
                      progress=False), FAST)  # fmt: skip
    target = str(tmp_path / "embeddings.parquet")
    assert main(["embed", "--checkpoint", os.path.join(out, "checkpoint.pt"), "--data", dataset,
                 "--output", target]) == 0  # fmt: skip
    table = schemas.read_embeddings(target)
    assert table.num_rows == len(data.Root(Store(dataset)).members["mel-alonso"])
    assert np.isfinite(np.asarray(table.column("vector").combine_chunks().values)).all()
    assert pq.read_schema(target).field("vector").type.list_size == 512


@pytest.mark.slow
def test_torchrun_ddp_splits_an_epoch_across_two_ranks(dataset, tmp_path):
    import subprocess
    import sys

    out = str(tmp_path / "ddp")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
         "29547", "-m", "duet.cli", "train", "--recipe", "alonso-co", "--data", dataset, "--out",
         out, "--epochs", "1", "--batch-size", "2", "--workers", "0", "--quiet", "--set",
         "warmup_steps=2"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    root = data.Root(Store(dataset))
    rows = root.manifest(root.latest_run(), "playlist_co", 0).num_rows
    with open(os.path.join(out, "metrics.jsonl")) as f:
        steps = [line for line in f if line.strip()]
    assert len(steps) == data.plan(rows, 2, 0, 2) > 0


# ---------------------------------------------------------------- Choi et al.


def test_info_nce_matches_its_direct_formula():
    a, b = (
        torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 1.0]]),
    )
    an, bn = torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(b, dim=1)
    tau, total = 0.2, 0.0
    for i in range(3):
        scores = [math.exp(float(an[i] @ bn[j]) / tau) for j in range(3)]
        total += -math.log(scores[i] / sum(scores))
    assert float(losses.info_nce(a, b, tau)) == pytest.approx(total / 3, rel=1e-6)


def test_multi_level_choi_sums_five_infonce_losses_and_embeds_640_d():
    from duet.training import systems

    torch.manual_seed(0)
    model = systems.Choi({"multi_level": True, "temperature": 0.1}).eval()
    a, b = torch.randn(4, 188, 96), torch.randn(4, 188, 96)
    levels = zip(model._levels(a), model._levels(b), strict=True)
    expected = sum(float(losses.info_nce(x.detach(), y.detach(), 0.1)) for x, y in levels)
    assert float(model([a, b], torch.Generator()).detach()) == pytest.approx(expected, rel=1e-5)
    assert model.embed(a).shape == (4, 640)
    assert systems.Choi({"temperature": 0.1}).eval().embed(a).shape == (4, 128)


@pytest.fixture(scope="module")
def choi_dataset(catalog, tmp_path_factory):
    from duet.pipelines.audio.mel import presets
    from duet.pipelines.audio.track import AudioConfig
    from tests.helpers import run_shards

    root = str(tmp_path_factory.mktemp("choi") / "data")
    run_shards(os.path.join(catalog, "tracks.parquet"), root,
               config=AudioConfig(wav_rates=(16000, 22050), profiles=(presets()["choi"],), max_duration=60.0))  # fmt: skip
    assert (
        main(
            [
                "pairs",
                "--data",
                root,
                "--strategies",
                "adjacent,random_segment,self,cpc",
                "--epochs",
                "0:2",
            ]
        )
        == 0
    )
    return root


@pytest.mark.parametrize("recipe", ["choi-adjacent", "choi-random", "choi-self", "choi-cpc"])
def test_choi_recipes_train_two_epochs_through_the_data_layer(recipe, choi_dataset, tmp_path):
    summary = train(TrainConfig(recipe=recipe, data=choi_dataset, out=str(tmp_path / "o"), epochs=2,
                                batch_size=2, workers=0, progress=False), {"multi_level": True})  # fmt: skip
    assert summary["state"]["epoch"] == 2 and math.isfinite(summary["loss"])


# ---------------------------------------------------------------- Ferraro et al.


@pytest.fixture(scope="module")
def ferraro_dataset(catalog, dataset, tmp_path_factory):
    """Genres and CF factors from the Melon-style playlists, then multimodal pairs."""
    root = str(tmp_path_factory.mktemp("ferraro") / "data")
    shutil.copytree(dataset, root)
    melon = os.path.join(root, "melon")
    for argv in (
        ["playlists", "--input", os.path.join(catalog, "melon"), "--format", "melon", "--output",
         melon, "--tracks", os.path.join(catalog, "tracks.parquet"), "--track-key", "melon_song_id",
         "--melon-genres", "both"],
        ["embeddings", "genre-w2v", "--track-meta", os.path.join(melon, "track_meta.parquet"),
         "--output", root, "--deterministic"],
        ["embeddings", "cf", "--playlists", os.path.join(melon, "playlists.parquet"), "--output",
         root, "--factors", "16", "--epochs", "2"],
        ["pairs", "--data", root, "--strategies", "multimodal", "--epochs", "0:2"],
    ):  # fmt: skip
        assert main(argv) == 0
    return root


def test_genre_view_stacks_a_tracks_genre_vectors_with_zero_padding(ferraro_dataset):
    root = data.Root(Store(ferraro_dataset))
    genres = root.genres("emb/genre_w2v")
    track, stacked = next(iter(genres.items()))
    assert stacked.shape[0] == schemas.GENRE_SLOTS
    used = (np.abs(stacked).sum(axis=1) > 0).sum()
    assert 1 <= used <= schemas.GENRE_SLOTS and not np.abs(stacked[used:]).sum()


@pytest.mark.parametrize("recipe", ["ferraro", "ferraro-genre", "ferraro-cf"])
def test_ferraro_recipes_train_two_epochs_through_the_data_layer(recipe, ferraro_dataset, tmp_path):
    summary = train(TrainConfig(recipe=recipe, data=ferraro_dataset, out=str(tmp_path / "o"),
                                epochs=2, batch_size=2, workers=0, progress=False))  # fmt: skip
    assert summary["state"]["epoch"] == 2 and math.isfinite(summary["loss"])


def test_ferraro_loss_sums_the_three_symmetric_pairs():
    from duet.training import systems

    torch.manual_seed(0)
    recipe = {"views": [{"name": "audio"}, {"name": "genre"}, {"name": "cf"}], "temperature": 0.1}
    model = systems.Ferraro(recipe, {"genre": 8, "cf": 301}).eval()
    views = [torch.randn(3, 256, 48), torch.randn(3, 10, 8), torch.randn(3, 301)]
    views[1][:, 4:] = 0
    z = [model.encoders[m](v) for m, v in zip(("audio", "genre", "cf"), views, strict=True)]
    expected = sum(
        float(losses.nt_xent(z[i], z[j], 0.1).detach()) for i, j in ((0, 1), (0, 2), (1, 2))
    )
    assert float(model(views, torch.Generator()).detach()) == pytest.approx(expected, rel=1e-5)


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


def test_cpc_predicts_each_step_against_the_other_tracks_segments():
    from duet.training import systems

    torch.manual_seed(0)
    model = systems.ChoiCPC({"temperature": 0.1, "predict_steps": 2}).eval()
    mel = torch.randn(3, 752, 96)
    z = model._segments(mel)
    context, _ = model.gru(z)
    terms = [float(losses.info_nce(p(context[:, t]), z[:, t + k], 0.1).detach())
             for k, p in enumerate(model.predictors, start=1) for t in range(4 - k)]  # fmt: skip
    assert z.shape == (3, 4, 128) and len(terms) == 5
    assert float(model([mel], torch.Generator()).detach()) == pytest.approx(
        sum(terms) / 5, rel=1e-5
    )
    assert model.embed(mel).shape == (3, 256)


# ---------------------------------------------------------------- PEMR


def test_barlow_twins_matches_its_hand_computed_terms():
    a = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [2.0, 1.0], [1.0, 4.0]])

    def standardise(x):
        return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)

    sa, sb = standardise(a), standardise(b)
    c = [
        [float(sum(sa[n, i] * sb[n, j] for n in range(3))) / 3 for j in range(2)] for i in range(2)
    ]
    invariance = (1 - c[0][0]) ** 2 + (1 - c[1][1]) ** 2
    redundancy = c[0][1] ** 2 + c[1][0] ** 2
    assert float(losses.barlow_twins(a, b, 0.25)) == pytest.approx(invariance + 0.25 * redundancy)
    assert float(losses.decorrelation(a, b)) == pytest.approx(c[0][0] ** 2 + c[1][1] ** 2)
    assert float(losses.barlow_twins(a, a, 0.0)) == pytest.approx(0.0, abs=1e-4)


def test_pemr_masks_hide_the_lowest_tenth_for_the_positive_and_the_rest_for_the_negative():
    from duet.training import systems

    scores = torch.tensor([[0.5, 0.1, 0.9, 0.3, 0.2, 0.8, 0.7, 0.6, 0.4, 0.05] * 2])
    positive, negative = systems.frame_masks(scores, 0.1)
    assert int(positive.sum()) == 2 and int(negative.sum()) == 18
    assert positive[0].nonzero().flatten().tolist() == [9, 19]  # the two 0.05 frames
    assert torch.equal(negative, ~positive)


def test_pemr_scores_frames_by_the_cls_attention_averaged_over_heads():
    from duet.training import models

    torch.manual_seed(0)
    transformer = models.FrameTransformer(bands=8, dim=6, layers=2, heads=3).eval()
    frames = torch.randn(2, 5, 8)
    scores = transformer.scores(frames)
    last = transformer.blocks[-1]
    x = transformer.inp(frames) + models.sinusoidal_positions(5, 6)
    x = torch.cat([transformer.cls.expand(2, -1, -1), x], dim=1)
    x, _ = transformer.blocks[0](x)
    h = last.norm1(x)
    _, per_head = last.attention(h, h, h, need_weights=True, average_attn_weights=False)
    assert scores.shape == (2, 5)
    assert torch.allclose(scores, per_head.mean(dim=1)[:, 0, 1:], atol=1e-6)


def test_pemr_loss_is_reconstruction_plus_barlow_twins_plus_weighted_negative():
    from duet.training import augment, loop, systems

    torch.manual_seed(0)
    recipe = {**loop.load_recipe("pemr"), "negative_weight": 0.5}
    model = systems.PEMR(recipe).eval()
    views = [torch.randn(3, 59049) * 0.1, torch.randn(3, 59049) * 0.1]
    got = float(model(views, torch.Generator().manual_seed(7)).detach())

    g = torch.Generator().manual_seed(7)
    mels = [model._features(augment.clmr_chain(v.clone(), 22050, g, pitch=False)) for v in views]
    assert mels[0].shape == (3, 462, 128)  # 256-point FFT, hop 128, 128 bands
    recon = sum(float(model.reconstruction(m, g)) for m in mels) / 2
    positive, negative = systems.frame_masks(model.transformer.scores(mels[1]), 0.1)
    assert int(positive[0].sum()) == round(0.1 * 462)
    z1 = model.projector(model.encoder(mels[0]))
    zp = model.projector(model.encoder(mels[1].masked_fill(positive[..., None], 0.0)))
    zn = model.projector(model.encoder(mels[1].masked_fill(negative[..., None], 0.0)))
    expected = (
        recon + float(losses.barlow_twins(z1, zp, 5e-3)) + 0.5 * float(losses.decorrelation(z1, zn))
    )
    assert got == pytest.approx(expected, rel=1e-4)
    assert model.embed(views[0]).shape == (3, 512)


def test_pemr_trains_two_epochs_through_the_data_layer_and_embeds(dataset, tmp_path):
    out = str(tmp_path / "o")
    summary = train(TrainConfig(recipe="pemr", data=dataset, out=out, epochs=2, batch_size=2,
                                workers=0, progress=False))  # fmt: skip
    assert summary["state"]["epoch"] == 2 and math.isfinite(summary["loss"])
    target = str(tmp_path / "pemr.parquet")
    assert main(["embed", "--checkpoint", os.path.join(out, "checkpoint.pt"), "--data", dataset,
                 "--output", target]) == 0  # fmt: skip
    assert pq.read_schema(target).field("vector").type.list_size == 512
