"""Training a recipe's model on one fixed batch from the real data layer: does it learn?"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from duet.training import data, loop, systems
from duet.training.store import Store


@dataclass
class Descent:
    losses: list[float]  # the loss before each step
    with_gradient: set[str]  # parameters that got a non-zero gradient at some step
    moved: set[str]  # parameters whose values changed


def fixed_batch_descent(root_uri: str, recipe_name: str, overrides: dict | None = None, *,
                        steps: int = 6, batch_size: int = 4) -> Descent:  # fmt: skip
    """``steps`` Adam steps at the recipe's learning rate on the first batch (of up to
    ``batch_size`` rows) of epoch 0 of the newest pair run, with the same augmentation and dropout draws at every step, so the loss is
    one function of the weights and only the weights change between steps."""
    recipe = loop.load_recipe(recipe_name, overrides)
    root = data.Root(Store(root_uri))
    torch.manual_seed(0)
    model = systems.build(recipe, loop.view_dims(root, recipe))
    if hasattr(model, "set_statistics"):
        stats = root.stats(recipe.get("profile", "choi"))
        model.set_statistics(stats.mean, stats.std)
    run = root.latest_run()
    batch_size = min(batch_size, root.manifest(run, recipe["strategy"], 0).num_rows)
    batches = data.EpochBatches(root, run, recipe["strategy"], 0, recipe["views"], batch_size,
                                seed=0)  # fmt: skip
    batch = batches.make_batch(0)
    assert batch is not None and len(batch["ids"]) == batch_size >= 2, "no complete batch"
    views = [batch[v.name] for v in recipe["views"]]
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    losses, with_gradient = [], set()
    for _ in range(steps):
        torch.manual_seed(1)  # the same dropout masks
        loss = model(views, torch.Generator().manual_seed(2))  # the same augmentations
        optimizer.zero_grad()
        loss.backward()
        with_gradient |= {name for name, p in model.named_parameters()
                          if p.grad is not None and bool(p.grad.abs().sum() > 0)}  # fmt: skip
        optimizer.step()
        losses.append(float(loss.detach()))
    moved = {
        name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])
    }
    return Descent(losses, with_gradient, moved)
