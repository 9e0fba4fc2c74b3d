"""What every checkpoint reader and writer shares: the error, and which entry names are allowed."""

from __future__ import annotations

import re

__all__ = ["MAX_ENTRIES", "MAX_NAME_LENGTH", "CheckpointError", "name_problem"]

#: at most this many arrays per checkpoint, in either format, and this many characters per name.
#: A safetensors header has room for about this many arrays (its JSON-value limit), so the legacy
#: .npz reader refuses more too: an archive of 100,000 empty arrays cost 74 MiB and 4 s to load.
MAX_ENTRIES = 2_500
MAX_NAME_LENGTH = 512

# each dotted part is an identifier or a list index (ModuleList / Sequential children)
_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


class CheckpointError(ValueError):
    """A checkpoint file that is malformed, truncated, corrupted, over a limit, or not made of
    named numeric arrays. The message names the file and what is wrong with it."""


def name_problem(name) -> str | None:
    """Why ``name`` cannot be a state-dict entry name, or None when it can."""
    if not isinstance(name, str) or not name:
        return "is not a non-empty string"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long (the limit is {MAX_NAME_LENGTH})"
    if not all(_NAME_PART.fullmatch(part) for part in name.split(".")):
        return "is not a dotted identifier (parts such as 'layer', '0', 'weight' joined by dots)"
    return None
