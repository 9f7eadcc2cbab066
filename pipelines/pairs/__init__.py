"""Pairs stage (``duet pairs``): per-epoch pair manifests. ``common`` names the strategies,
``sources`` loads the tables they read, ``kernels`` and ``strategies`` draw one epoch,
``runs`` keeps ``pairs/LATEST`` and old runs, ``verify`` re-checks a run, ``job`` writes one."""
