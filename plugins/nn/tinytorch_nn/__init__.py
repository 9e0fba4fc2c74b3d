"""TinyTorch stage 'nn' (work in progress)."""
