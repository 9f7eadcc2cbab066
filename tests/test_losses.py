"""The losses against their formulas computed by hand: NT-Xent, InfoNCE, Barlow Twins."""

import math

import pytest
import torch

from duet.training import losses


def test_nt_xent_matches_its_direct_formula():
    a, b = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    z = torch.nn.functional.normalize(torch.cat([a, b]), dim=1)
    tau, total = 0.5, 0.0
    for i in range(4):
        partner = (i + 2) % 4
        others = [math.exp(float(z[i] @ z[k]) / tau) for k in range(4) if k != i]
        total += -math.log(math.exp(float(z[i] @ z[partner]) / tau) / sum(others))
    assert float(losses.nt_xent(a, b, tau)) == pytest.approx(total / 4, rel=1e-6)


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
