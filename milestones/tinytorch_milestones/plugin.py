"""pluggy hooks of the milestone suite (work in progress)."""
