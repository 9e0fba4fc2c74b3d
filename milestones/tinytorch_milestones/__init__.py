"""TinyTorch milestone suite (work in progress)."""
