"""Co-occurrence stage (``duet cooccurrence``): playlists (or artists) → pair counts and top-K
neighbours; ``kernels`` holds the compiled row-wise product, ``job`` the Beam plumbing."""
