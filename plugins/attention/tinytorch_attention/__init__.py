"""TinyTorch stage 'attention' (work in progress)."""
