"""Features stage (``duet features import``): per-track arrays a dataset ships instead of
audio (Melon's ``arena_mel``, any tree or manifest of ``.npy`` files) become a mel stream of
the dataset root — the same shards, index, statistics, failures and ``_SUCCESS`` that
``duet shards`` writes, so pairs, training, embedding and evaluation read it unchanged.

``profile`` declares what the arrays are (bands, rate, hop, scale); ``sources`` lists the
arrays of a layout and derives ids; ``arrays`` checks and converts one array; ``job`` is the
Beam job on the shard set (``pipelines.shardset``)."""
