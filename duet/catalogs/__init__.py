"""The papers' evaluation datasets as duet catalogues (``duet catalog <dataset>``): one module
per dataset reads the files it ships — no network — and publishes a track manifest, a labels
table, a splits table and the failures (``duet.catalogs.common``).

Built: ``magnatagatune``, ``gtzan``, ``mtg_jamendo``, ``fma``, ``covers80``,
``msd_lastfm``, ``shs100k``.
"""
