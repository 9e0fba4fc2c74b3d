"""Running a plugin's code (its import, each of its hooks) with a time limit.

Python cannot stop a thread, so the loading thread hands each call to a worker thread and waits
for it: a plugin that blocks (sleeps, waits for input or a lock) past the limit is refused like
one that raises, and loading goes on with a fresh worker. The blocked worker is left behind, a
daemon that does not keep the process alive; whatever it registers later is never committed.
"""

from __future__ import annotations

import queue
import threading


class PluginTimeout(Exception):
    """A plugin's import or hook ran past ``TINYTORCH_PLUGIN_TIMEOUT``."""


class PluginInterrupt(Exception):
    """A plugin's own code raised ``KeyboardInterrupt``: the user's Ctrl-C reaches the loading
    thread, never the worker, so this one is the plugin's failure like any other exception."""


class PluginWorker:
    """One daemon thread that runs plugin calls one at a time, for one load of the plugins."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.idents: set = set()  # every thread that ran plugin code for this load (a stuck one too)
        self.abandoned = False  # a plugin timed out: its thread is left behind
        self._jobs: queue.SimpleQueue | None = None  # the live worker's queue; None: none started

    def run(self, what: str, function, **kwargs):
        """``function(**kwargs)`` in the worker; its value, or what it raised, raised here."""
        if self._jobs is None:
            self._jobs = self._start()
        outcome: dict = {}
        done = threading.Event()
        self._jobs.put((function, kwargs, outcome, done))
        if not done.wait(self.timeout):
            self._jobs, self.abandoned = None, True  # the next call starts a fresh worker
            raise PluginTimeout(f"{what} did not finish within {self.timeout:g} s (TINYTORCH_PLUGIN_TIMEOUT): "
                                "a plugin must not block while it loads")
        error = outcome.get("error")
        if isinstance(error, KeyboardInterrupt):
            raise PluginInterrupt(f"{what} raised KeyboardInterrupt({error}) itself") from error
        if error is not None:
            raise error
        return outcome.get("value")

    def close(self) -> None:
        """Let the live worker finish (a stuck one stays stuck, harmlessly)."""
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None

    def _start(self) -> queue.SimpleQueue:
        jobs: queue.SimpleQueue = queue.SimpleQueue()

        def serve():
            self.idents.add(threading.get_ident())
            while (job := jobs.get()) is not None:
                function, kwargs, outcome, done = job
                try:
                    outcome["value"] = function(**kwargs)
                except BaseException as exc:  # handed to the loading thread
                    outcome["error"] = exc
                finally:
                    done.set()

        threading.Thread(target=serve, name="tinytorch plugin loader", daemon=True).start()
        return jobs
