"""Shared helpers for the benchmark scripts: GEMM rate, peak-RSS sampling, table printing."""

from __future__ import annotations

import threading
import time

import numpy as np
import psutil


def gemm_rate(n: int = 2048, k: int = 2048, m: int = 8192, repeats: int = 3) -> float:
    """Measured float32 GEMM rate of this machine (FLOP/s), best of ``repeats``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, k), dtype=np.float32)
    b = rng.standard_normal((k, m), dtype=np.float32)
    a @ b  # warm-up
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = max(best, 2.0 * n * k * m / (time.perf_counter() - t))
    return best


def anonymous_rss() -> int:
    """This process's resident anonymous memory in bytes (RssAnon: its own arrays, not the file pages it maps)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRSS:
    """Context manager sampling this process's resident memory; ``.peak`` in bytes (file pages it maps
    included), ``.peak_anon`` its anonymous part (Linux; what the kernel cannot drop and read back)."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak, self.peak_anon = interval, 0, 0
        self._proc = psutil.Process()

    def _sample(self):
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self.peak_anon = max(self.peak_anon, anonymous_rss())

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self):
        self._stop = threading.Event()
        self._sample()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()


def measure(fn, *args, **kw):
    with PeakRSS() as mem:
        t = time.perf_counter()
        out = fn(*args, **kw)
        dt = time.perf_counter() - t
    return out, dt, mem.peak


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n### {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
