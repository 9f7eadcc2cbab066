"""Playlists stage (``duet playlists``): one module per input format (``mpd``, ``melon``,
``table``) over the shared collector in ``common``; ``steps`` partitions the records by playlist
and writes ``playlists.parquet`` and ``track_meta.parquet`` part by part (``assemble``), as a
Beam graph (``job``) or on one machine with parts spilled to disk (``local``)."""
