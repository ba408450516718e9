"""torch threads per fit: ``n_jobs`` and the limits of joblib and threadpoolctl."""

import threading

import numpy as np
import pytest
import torch
from joblib import cpu_count
from skorch.callbacks import Callback
from threadpoolctl import threadpool_limits

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle._threads import effective_n_threads, torch_threads


class RecordThreads(Callback):
    def on_epoch_end(self, net, **kwargs):
        self.seen_ = torch.get_num_threads()


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_effective_n_threads_follows_scikit_learn_convention(restore_threads):
    torch.set_num_threads(1)
    assert effective_n_threads(None) == 1
    assert effective_n_threads(3) == 3
    assert effective_n_threads(-1) == cpu_count()
    assert effective_n_threads(-cpu_count() - 5) == 1


def test_fit_uses_n_jobs_threads_and_restores_the_setting(small_long_tailed, tiny_params,
                                                          restore_threads):
    X, y = small_long_tailed
    torch.set_num_threads(1)
    record = RecordThreads()
    # One network: an ensemble's members train with copies of the callbacks.
    CLMLEEmbedder(**tiny_params, n_jobs=2, n_estimators=1, callbacks=[record]).fit(X, y)
    assert record.seen_ == 2
    assert torch.get_num_threads() == 1


def test_default_respects_threadpoolctl_limit(small_long_tailed, tiny_params, restore_threads):
    X, y = small_long_tailed
    torch.set_num_threads(2)
    record = RecordThreads()
    with threadpool_limits(1):
        CLMLEEmbedder(**tiny_params, n_estimators=1, callbacks=[record]).fit(X, y)
    assert record.seen_ == 1


def test_threads_restored_when_fit_fails(small_long_tailed, tiny_params, restore_threads):
    X, y = small_long_tailed
    torch.set_num_threads(1)
    with pytest.raises(ValueError):
        CLMLEEmbedder(**tiny_params, n_jobs=2).fit(X, np.zeros_like(y))
    assert torch.get_num_threads() == 1


def test_classifier_predicts_with_n_jobs(restore_threads):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.repeat([0, 1], 30)
    torch.set_num_threads(1)
    clf = KNearestClusterClassifier(n_neighbors=3, n_jobs=2, device="cpu").fit(X, y)
    assert clf.predict(X).shape == (60,)
    assert torch.get_num_threads() == 1


def test_concurrent_calls_in_threads_share_and_restore(restore_threads):
    torch.set_num_threads(2)
    inside, seen = threading.Barrier(2), []

    def work():
        with torch_threads(2):
            inside.wait(timeout=10)
            seen.append(torch.get_num_threads())
            inside.wait(timeout=10)

    with torch_threads(2):  # the first call holds 2 threads; a nested one keeps them
        with torch_threads(1) as nested:
            assert nested == 2
    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    # Whichever call starts second takes half the threads while both run.
    assert sorted(seen) == [1, 2]
    assert torch.get_num_threads() == 2


def test_default_is_one_thread_unless_asked(monkeypatch, restore_threads):
    # scikit-learn's n_jobs=None: one, unless OMP_NUM_THREADS or a joblib
    # context says otherwise (benchmarks/threads.py: many threads collapse
    # when fits share the cores).
    from joblib import parallel_config

    torch.set_num_threads(2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert effective_n_threads(None) == 1
    with parallel_config(n_jobs=2):
        assert effective_n_threads(None) == min(2, cpu_count())
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # torch read it at start-up (here: set above)
    assert effective_n_threads(None) == min(2, cpu_count())
    with threadpool_limits(1):
        assert effective_n_threads(None) == 1
