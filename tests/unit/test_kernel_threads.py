"""The numba kernels run on the job's share of the CPU, not the machine's."""

import numba

from alignedreid.foundation.kernel_threads import limit_kernel_threads


def test_kernel_threads_follow_the_job_and_never_exceed_numba():
    before = numba.get_num_threads()
    try:
        assert limit_kernel_threads(1) == 1
        assert limit_kernel_threads(10_000) == numba.config.NUMBA_NUM_THREADS
        assert limit_kernel_threads(None) == numba.config.NUMBA_NUM_THREADS  # nothing given: unchanged
    finally:
        numba.set_num_threads(before)
