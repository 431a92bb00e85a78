"""Stall detection: a training step that runs far longer than the usual step ends the process with
a message naming the step, instead of hanging (a compiled step stuck inside a native kernel cannot
be interrupted from Python, so the watchdog thread reports and exits)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

import numpy as np

log = logging.getLogger(__name__)
STALL_EXIT_CODE = 3


class StallWatchdog:
    """Call :meth:`begin` before and :meth:`end` after each step. Once ``warmup`` steps have been
    timed, a step running longer than max(``factor`` x median step, ``min_s``) seconds is a stall."""

    def __init__(self, factor: float, min_s: float, warmup: int = 3, on_stall=None, poll_s: float = 1.0):
        self.factor, self.min_s, self.warmup, self.poll_s = factor, min_s, warmup, poll_s
        self.on_stall = on_stall or self._exit
        self.durations: list[float] = []
        self._current: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def begin(self, label: str) -> None:
        with self._lock:
            self._current = (label, time.monotonic())

    def end(self) -> None:
        with self._lock:
            if self._current is not None:
                self.durations.append(time.monotonic() - self._current[1])
            self._current = None

    def limit(self) -> float | None:
        if len(self.durations) < self.warmup:
            return None
        return max(self.factor * float(np.median(self.durations[-50:])), self.min_s)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            with self._lock:
                current, limit = self._current, self.limit()
            if current is None or limit is None:
                continue
            elapsed = time.monotonic() - current[1]
            if elapsed > limit:
                median = float(np.median(self.durations[-50:]))
                self.on_stall(
                    f"training stalled at {current[0]}: no progress for {elapsed:.0f} s, the median step takes "
                    f"{median:.2f} s (limit max(train.stall_factor {self.factor:g} x median, train.stall_min_s "
                    f"{self.min_s:g} s))"
                )
                return

    @staticmethod
    def _exit(message: str) -> None:
        log.error("%s", message)
        print(f"[train] error: {message}", file=sys.__stderr__, flush=True)
        for h in logging.getLogger().handlers:
            h.flush()
        os._exit(STALL_EXIT_CODE)
