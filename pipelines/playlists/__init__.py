"""Playlists stage (``duet playlists``): one module per input format (``mpd``, ``melon``,
``table``) over the shared collector in ``common``; ``job`` shuffles entries by playlist and
publishes ``playlists.parquet`` and ``track_meta.parquet``."""
