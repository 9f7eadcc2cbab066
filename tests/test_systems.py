"""What each published system computes: its loss from its encoders' outputs, its masks and
scores, its embedding size."""

import pytest
import torch

from duet.training import losses
from duet.training.recipe import load_recipe


def test_multi_level_choi_sums_five_infonce_losses_and_embeds_640_d():
    from duet.training import systems

    torch.manual_seed(0)
    model = systems.Choi(load_recipe("choi-adjacent", {"multi_level": True})).eval()
    a, b = torch.randn(4, 188, 96), torch.randn(4, 188, 96)
    levels = zip(model._levels(a), model._levels(b), strict=True)
    expected = sum(float(losses.info_nce(x.detach(), y.detach(), 0.1)) for x, y in levels)
    assert float(model([a, b], torch.Generator()).detach()) == pytest.approx(expected, rel=1e-5)
    assert model.embed(a).shape == (4, 640)
    assert systems.Choi(load_recipe("choi-adjacent", {"multi_level": False})).eval().embed(
        a
    ).shape == (4, 128)


def test_cpc_predicts_each_step_against_the_other_tracks_segments():
    from duet.training import systems

    torch.manual_seed(0)
    model = systems.ChoiCPC(load_recipe("choi-cpc", {"predict_steps": 2})).eval()
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


def test_ferraro_loss_sums_the_three_symmetric_pairs():
    from duet.training import systems

    torch.manual_seed(0)
    recipe = load_recipe("ferraro", {"genre_vector_size": None})
    model = systems.Ferraro(recipe, {"genre": 8, "cf": 301}).eval()
    views = [torch.randn(3, 256, 48), torch.randn(3, 10, 8), torch.randn(3, 301)]
    views[1][:, 4:] = 0
    z = [model.encoders[m](v) for m, v in zip(("audio", "genre", "cf"), views, strict=True)]
    expected = sum(
        float(losses.nt_xent(z[i], z[j], 0.1).detach()) for i, j in ((0, 1), (0, 2), (1, 2))
    )
    assert float(model(views, torch.Generator()).detach()) == pytest.approx(expected, rel=1e-5)


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
    from duet.training import augment, systems

    torch.manual_seed(0)
    recipe = load_recipe("pemr", {"negative_weight": 0.5})
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
