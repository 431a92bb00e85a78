"""Datasets: the registry of sources and their readers, manifests, the image contract, safe archive
extraction, the synthetic generator, and the input pipelines and sampler of training and inference."""

LAYER = 2  # docs/architecture.md §2: imports go to this layer and the ones below
