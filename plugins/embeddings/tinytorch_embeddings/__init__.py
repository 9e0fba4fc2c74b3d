"""TinyTorch stage 'embeddings' (work in progress)."""
