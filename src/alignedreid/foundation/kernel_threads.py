"""The thread count of the numba kernels (evaluation, search): the job's CPU share, not the machine's."""

from __future__ import annotations


def limit_kernel_threads(threads: int | None) -> int:
    """Run the numba kernels on at most ``threads`` threads (the job's CPU share on a cluster node,
    where os.cpu_count() reports the whole machine); returns the count in use."""
    import numba

    if threads:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    return numba.get_num_threads()
