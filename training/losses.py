"""Contrastive losses."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable

import torch
import torch.nn.functional as F


def total(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """The sum of loss terms (at least one), added in order."""
    return functools.reduce(operator.add, terms)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent over a batch of positive pairs (a_i, b_i): each of the 2N embeddings
    is classified against the 2N - 1 others, its partner being the positive."""
    z = F.normalize(torch.cat([a, b]).float(), dim=1)
    n = a.shape[0]
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with in-batch negatives: anchor a_i must pick its positive b_i among all b_j."""
    a, b = F.normalize(a.float(), dim=1), F.normalize(b.float(), dim=1)
    logits = a @ b.T / temperature
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


def cross_correlation(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins' ``C``: each dimension standardised over the batch (as BatchNorm without
    affine), then ``C_ij = Σ_n a_ni · b_nj / N``."""
    a, b = a.float(), b.float()
    a = (a - a.mean(0)) / torch.sqrt(a.var(0, unbiased=False) + eps)
    b = (b - b.mean(0)) / torch.sqrt(b.var(0, unbiased=False) + eps)
    return a.T @ b / a.shape[0]


def barlow_twins(a: torch.Tensor, b: torch.Tensor, off_diagonal: float) -> torch.Tensor:
    """``Σ_i (1 − C_ii)² + off_diagonal · Σ_{i≠j} C_ij²``: invariance plus redundancy reduction."""
    c = cross_correlation(a, b)
    diagonal = torch.diagonal(c)
    return (1 - diagonal).pow(2).sum() + off_diagonal * (c.pow(2).sum() - diagonal.pow(2).sum())


def decorrelation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PEMR's negative term ``Σ_i C_ii²``: pushes a view and its negative apart per dimension."""
    return torch.diagonal(cross_correlation(a, b)).pow(2).sum()
