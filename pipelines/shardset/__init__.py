"""The shard set of a dataset root, shared by every job that writes one: ``duet shards``
(decoded audio) and ``duet features import`` (precomputed arrays).

``member`` encodes a track's arrays; ``tar`` writes deterministic archives with offsets;
``stats`` merges per-band statistics; ``writer`` writes one shard of every stream with its
index rows, failures and report; ``job`` is the Beam graph around them (inputs → key by shard
→ write → finalize) and the publish step that ends in ``_SUCCESS``.
"""
