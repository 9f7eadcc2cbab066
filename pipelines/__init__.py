"""duet's Beam jobs, one package per stage of the data flow, each with the pure functions it calls:

- ``audio``: track manifest → decoded, resampled audio and log-mel in indexed WebDataset shards;
- ``playlists``: MPD / Melon / plain tables → normalised playlists and track metadata;
- ``cooccurrence``: playlists → co-occurrence counts and top-K neighbours;
- ``tables``: playlists and track metadata → Word2Vec, CF and genre vectors, splits;
- ``pairs``: tables and the audio index → per-epoch pair manifests.

``beam_io`` builds the pipeline every job runs in; ``csr`` holds the compiled sparse-matrix
helpers the playlists, co-occurrence and pairs stages share; ``spill`` partitions rows into
parts on local disk, the GroupByKey of jobs that run on one machine without Beam.
"""
