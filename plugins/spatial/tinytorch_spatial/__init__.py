"""TinyTorch stage 'spatial' (work in progress)."""
