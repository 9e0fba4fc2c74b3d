"""The one error of this stage."""


class CompileError(RuntimeError):
    """A step that cannot be compiled (or replayed) faithfully; the message says why and what to do."""
