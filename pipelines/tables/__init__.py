"""Table stage (``duet embeddings``, ``duet splits``): single-process trainers run as one Beam
step — playlist and genre Word2Vec (``w2v``), collaborative filtering (``cf``), stratified
splits (``splits``) — over the readers and writers they share (``common``)."""
