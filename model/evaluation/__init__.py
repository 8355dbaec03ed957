"""The paper's evaluation protocol on frozen features (issue 6), for any feature extractor.

`data` loads a corpus once (mixtures and vocals, per-second singing flags), `extract` turns it
into per-chunk and per-track embeddings for one extractor, and `probes`, `similarity` and
`retrieval` score them; `run` ties these together and `report` writes markdown, JSON and plots.
Baselines (`baselines`) go through the same path, so their numbers compare like for like.
"""
