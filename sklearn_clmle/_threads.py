"""torch's intra-op threads for the duration of one fit, transform or predict.

torch runs its intra-op work on a pool of OpenMP threads. Its size
follows ``OMP_NUM_THREADS`` and the limits of ``threadpoolctl`` (and thus of
joblib, which sets ``OMP_NUM_THREADS`` in its workers), and by default it is
every core. Two processes that each use every core oversubscribe the machine,
and OpenMP's busy-waiting threads then make both fits many times slower.
The estimators' ``n_jobs`` picks the number per call (one thread unless
asked, as scikit-learn's ``n_jobs=None``); :func:`torch_threads` sets it and
puts the previous value back afterwards.
"""

import functools
import os
import threading
from contextlib import contextmanager
from numbers import Integral

import torch
from joblib import cpu_count, effective_n_jobs
from sklearn.utils._param_validation import Interval

#: The ``n_jobs`` constraint of every estimator: 0 is not a number of threads.
N_JOBS_CONSTRAINT = [None, Interval(Integral, 1, None, closed="left"),
                     Interval(Integral, None, -1, closed="right")]

_lock = threading.Lock()
_local = threading.local()  # depth of nested calls in this thread (fit_transform)
_active = 0                 # threads of this process inside torch_threads right now


def effective_n_threads(n_jobs, current=None):
    """Threads for ``n_jobs``, with scikit-learn's meaning of ``n_jobs``.

    ``None`` means one thread, unless ``OMP_NUM_THREADS`` is set (then
    torch's setting, which follows it; joblib sets it in its workers) or a
    ``joblib.parallel_config(n_jobs=k)`` context is active (then ``k``). An
    active ``threadpoolctl.threadpool_limits`` caps it (torch's setting
    ``current``, default: now, follows such limits). A positive int is that
    many threads; ``-1`` every CPU, ``-2`` all but one, and so on.

    One thread by default because the family's networks are small: on an
    idle 2-core machine two threads make a fit about 1.9x faster, but when
    other work shares the cores OpenMP's busy-waiting threads make it more
    than 10x slower (``benchmarks/threads.py``).
    """
    cpus = cpu_count()
    current = torch.get_num_threads() if current is None else current
    if n_jobs is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return max(1, min(current, cpus))
        return max(1, min(effective_n_jobs(None), current, cpus))
    if n_jobs < 0:
        return max(1, cpus + 1 + n_jobs)
    return int(n_jobs)


@contextmanager
def torch_threads(n_jobs):
    """Run the block with torch's intra-op threads set from ``n_jobs``.

    torch's setting belongs to the calling thread (OpenMP's per-thread
    ``nthreads``; new threads start from the last value set anywhere), so
    each call saves and restores its own thread's value. When calls run at
    once in several threads of one process (joblib's threading backend,
    dask), a call that starts while ``k`` others run takes ``1 / (k + 1)``
    of its threads, so that together they do not oversubscribe the cores.
    Nested calls in one thread (``fit_transform``, a meta-estimator's inner
    fits) keep the outer call's setting.
    """
    global _active
    if getattr(_local, "depth", 0):
        _local.depth += 1
        try:
            yield torch.get_num_threads()
        finally:
            _local.depth -= 1
        return
    outer = torch.get_num_threads()
    with _lock:
        n_threads = max(1, effective_n_threads(n_jobs, outer) // (_active + 1))
        _active += 1
    torch.set_num_threads(n_threads)
    _local.depth = 1
    try:
        yield n_threads
    finally:
        _local.depth = 0
        with _lock:
            _active -= 1
        torch.set_num_threads(outer)


def uses_n_jobs(method):
    """Decorate an estimator method to run under ``torch_threads(self.n_jobs)``.

    An invalid ``n_jobs`` leaves the threads alone: the method's parameter
    validation then reports it.
    """
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        n_jobs = getattr(self, "n_jobs", None)
        if n_jobs is not None and (not isinstance(n_jobs, Integral) or isinstance(n_jobs, bool)
                                   or n_jobs == 0):
            return method(self, *args, **kwargs)
        with torch_threads(n_jobs):
            return method(self, *args, **kwargs)
    return wrapper
