"""The tasks of the development suite (benchmarks/_suite.py): generated data only, no training."""

import numpy as np
import pytest
import torch

import _suite  # benchmarks/, on the path by pyproject.toml's pytest settings
from sklearn_clmle.datasets import long_tailed_counts

HAVE_DATA = (_suite.data_dir() / "optdigits.npz").exists()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason=f"no KEEL data in {_suite.data_dir()}")


def needs_files(task):
    """Skip unless the data folder holds the task's files (UCR and MNIST are not shipped)."""
    return pytest.mark.skipif(not _suite.has_data(task),
                              reason=f"{task}: its files are not in {_suite.data_dir()}")


def _load(dataset):
    with np.load(_suite.data_dir() / f"{dataset}.npz") as f:
        return f["X"], f["y"]


def _counts(y):
    return np.bincount(y).tolist()


def test_registry_families_and_halves():
    assert len(_suite.TASKS) == 45
    by_family = {}
    for name in _suite.TASKS:
        by_family.setdefault(_suite.family(name), []).append(_suite.half(name))
    assert {f: len(h) for f, h in by_family.items()} == {
        "long-tail": 22, "binary": 12, "perceptual": 3, "real-perceptual": 8}
    for halves in by_family.values():  # both halves in every family, sizes within one
        assert abs(halves.count("A") - halves.count("B")) <= 1
    # Both imbalance ratios of a tabular set share a half (MNIST's are split,
    # as the tuning tasks' alike pairs are, so that each half has real images).
    for dataset in _suite.MULTICLASS:
        assert _suite.half(f"lt:{dataset}-exp10") == _suite.half(f"lt:{dataset}-exp100")


def test_default_seeds():
    assert _suite.default_seeds("binary:glass5") == [0, 1, 2, 3, 4]
    assert _suite.default_seeds("lt:vowel-exp10") == [0, 1, 2]


@pytest.mark.parametrize("name,ratio,n_max,n_test", [
    ("perceptual:digits-canvas-exp50", 50, None, 30),
    ("perceptual:signal-exp100", 100, 1250, 100),
])
def test_perceptual_tasks(name, ratio, n_max, n_test):
    data = _suite.task(name, 0)
    assert data.family == "perceptual" and data.name == name
    n_features = 11 * 11 if data.encoder == "cnn2d" else 128
    assert data.X_train.shape == (data.n_train, n_features)
    assert data.X_test.shape == (data.n_test, n_features)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert _counts(data.y_test) == [n_test] * 10  # balanced test split
    counts = _counts(data.y_train)
    n_max = n_max or max(counts)
    assert sorted(counts) == sorted(long_tailed_counts(n_max, 10, ratio))
    if name == "perceptual:signal-exp100":
        assert data.n_train >= 3000
    # Deterministic per seed, different across seeds.
    again, other = _suite.task(name, 0), _suite.task(name, 1)
    np.testing.assert_array_equal(data.X_train, again.X_train)
    np.testing.assert_array_equal(data.y_test, again.y_test)
    assert not np.array_equal(data.X_test, other.X_test)


def test_large_signal_task():
    data = _suite.task("perceptual:signal-large-exp10", 0)
    assert data.n_train >= 20_000
    assert data.X_train.shape == (data.n_train, 128)
    assert sorted(_counts(data.y_train)) == sorted(long_tailed_counts(5000, 10, 10))


def test_canvas_digits_keep_the_digit():
    X, y = _suite.make_canvas_digits(0, noise=0.0)
    images = X.reshape(-1, 11, 11)
    # Each 8x8 digit lands whole inside the canvas: total ink is unchanged.
    from sklearn.datasets import load_digits

    np.testing.assert_allclose(images.sum(axis=(1, 2)),
                               load_digits().images.sum(axis=(1, 2)) / 16, rtol=1e-5)


def test_signal_encoder_shape():
    import torch

    encoder = _suite.SignalEncoder(128, embedding_dim=7).eval()
    assert encoder(torch.zeros(3, 128)).shape == (3, 7)


@needs_data
@pytest.mark.parametrize("dataset", ["optdigits", "vowel"])
@pytest.mark.parametrize("ratio", [10, 100])
def test_real_long_tailed_tasks(dataset, ratio):
    X, y = _load(dataset)
    data = _suite.task(f"lt:{dataset}-exp{ratio}", 0)
    per_class = _suite.balanced_test_size(y)
    assert _counts(data.y_test) == [per_class] * len(np.unique(y))
    counts = _counts(data.y_train)
    n_max = np.bincount(y).min() - per_class  # the smallest class's pool
    assert max(counts) == n_max
    assert sorted(counts) == sorted(long_tailed_counts(n_max, len(counts), ratio))
    if n_max >= 100 * 5:  # big enough for the requested ratio to survive rounding
        assert data.realised_ratio == pytest.approx(ratio, rel=0.05)
    # Raw features: training rows are rows of the stored data, unscaled.
    stored = {row.tobytes() for row in X.astype(np.float32)}
    assert all(row.tobytes() in stored for row in data.X_train[:20])
    again = _suite.task(f"lt:{dataset}-exp{ratio}", 0)
    np.testing.assert_array_equal(data.X_train, again.X_train)


@needs_files("ucr:FiftyWords")
@needs_files("ucr:Earthquakes")
@pytest.mark.parametrize("dataset", ["Earthquakes", "FiftyWords"])
def test_real_signal_tasks_keep_the_archive_split(dataset):
    with np.load(_suite.data_dir() / f"ucr_{dataset}.npz") as f:
        stored = {k: f[k] for k in f.files}
    data = _suite.task(f"ucr:{dataset}", 1)
    assert data.family == "real-perceptual" and data.encoder == "cnn1d"
    assert data.signal_length == stored["X_train"].shape[1] == data.n_features
    np.testing.assert_array_equal(data.X_train, stored["X_train"])
    np.testing.assert_array_equal(data.y_test, stored["y_test"])
    assert data.realised_ratio == pytest.approx(
        np.bincount(stored["y_train"]).max() / np.bincount(stored["y_train"]).min())


@needs_files("ucr:Crop-exp100")
def test_long_tailed_crop_draws_its_tail_per_seed():
    with np.load(_suite.data_dir() / "ucr_Crop.npz") as f:
        X_pool, y_pool, y_test = f["X_train"], f["y_train"], f["y_test"]
    data, again, other = (_suite.task("ucr:Crop-exp100", seed) for seed in (0, 0, 1))
    counts = _counts(data.y_train)
    assert sorted(counts) == sorted(long_tailed_counts(300, 24, 100))
    assert data.realised_ratio == 100 and data.n_test == len(y_test)
    # Rows of the archive's training split with their labels, none drawn twice
    # (Crop repeats some series: count (row, label) pairs, not rows).
    from collections import Counter

    pool = Counter(zip(map(bytes, X_pool), y_pool.tolist()))
    drawn = Counter(zip(map(bytes, data.X_train), data.y_train.tolist()))
    assert all(pool[pair] >= n for pair, n in drawn.items())
    np.testing.assert_array_equal(data.X_train, again.X_train)
    assert _counts(other.y_train) != counts  # another seed, another head class


@needs_data
def test_binary_folds_partition():
    X, y = _load("yeast3")
    folds = _suite.binary_folds(y)
    assert len(folds) == 5
    tests = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tests), np.arange(len(y)))  # every row tested once
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(y)
        assert y[test].sum() in (y.sum() // 5, y.sum() // 5 + 1)  # stratified
    for seed, (train, test) in enumerate(folds):
        data = _suite.task("binary:yeast3", seed)
        np.testing.assert_array_equal(data.X_test, X[test].astype(np.float32))
        np.testing.assert_array_equal(data.y_train, y[train])
    with pytest.raises(ValueError, match="folds|fold"):
        _suite.task("binary:yeast3", 5)


def test_dev_suite_methods_and_report():
    """The command's pieces that need no training: variants, cache keys, factories, report."""
    import dev_suite

    assert dev_suite.parse_variant('v={"emb__n_rounds": 3}') == ("v", {"emb__n_rounds": 3})
    assert (dev_suite.row_key("t", "CLMLE", {"b": 1, "a": 2}, 0, "1")
            == dev_suite.row_key("t", "CLMLE", {"a": 2, "b": 1}, 0, "1"))
    data = _suite.task("perceptual:digits-canvas-exp50", 0)
    pipe = dev_suite.clmle(data, 0, {"emb__n_rounds": 3, "clf__n_neighbors": 10})
    assert pipe.get_params()["emb__module_params"] == {"image_shape": (1, 11, 11)}
    assert pipe.get_params()["clf__n_neighbors"] == 10
    pipe = dev_suite.clmle(data, 0, {"readout": "logreg", "encoder": "mlp", "clf__C": 0.5})
    assert pipe.get_params()["emb__module"] is None
    assert pipe.get_params()["clf__logisticregression__C"] == 0.5
    net = dev_suite.network(data, 0, "logit-adjusted")[-1]
    assert (net.batch_size, net.max_epochs) == (64, 200)  # 402 rows: 6 steps an epoch
    quick = dev_suite.METHODS["quick network (logit-adjusted CE)"](data, 0)[-1]
    assert (quick.batch_size, quick.max_epochs, quick.optimizer) == (128, 60, torch.optim.Adam)
    assert quick.callbacks == [] and set(dev_suite.METHODS) == set(dev_suite.METHOD_NAMES)
    rows = [dict(task=t, name=m, seed=0, family="binary", half="A", n_train=10,
                 balanced_accuracy=ba, fit_time=1.0, roc_auc=0.5, log_loss=0.7)
            for t, m, ba in [("binary:a", "CLMLE", 0.9), ("binary:a", "SMOTE + kNN", 0.8),
                             ("binary:b", "CLMLE", 0.7), ("binary:b", "SMOTE + kNN", 0.702)]]
    rows.append(dict(rows[0], task="binary:c", balanced_accuracy=float("nan"), error="boom"))
    text = dev_suite.report(rows, ["CLMLE", "SMOTE + kNN"])
    assert "| CLMLE |  | 1/1/0 |" in text and "binary:c / CLMLE / seed 0: boom" in text


@pytest.mark.parametrize("name", ["tune:synthetic-5c-linear20", "tune:digits-exp50"])
def test_budget_variants_count_the_rows_each_network_trains_on(name):
    # A "budget" variant with the default rule gives the steps "auto" resolves
    # on a cross-fitted network's part (two thirds of the rows), not on all rows.
    import dev_suite
    from sklearn_clmle._input_rows import cross_fit_folds

    data = _suite.task(name, 0)
    embedder = dev_suite.clmle(data, 0)[0]
    part = data.y_train[cross_fit_folds(data.y_train, embedder.n_estimators, 0)[0][0]]
    resolved = embedder._check_params_vs_input(np.bincount(part))
    steps = dev_suite.budget_steps(embedder, data, {})
    assert steps == {k: resolved[k] for k in ("pretrain_steps", "steps_per_round")}
    # Another floor is the rule's, on the same rows and batches.
    batch = embedder.clusters_per_batch * resolved["samples_per_cluster"]
    assert dev_suite.budget_steps(embedder, data, {"min_round_steps": 30})["steps_per_round"] \
        == max(30, min(100, 5 * -(-len(part) // batch)))


@needs_files("mnist:exp100")
def test_mnist_long_tails_draw_from_the_training_split():
    with np.load(_suite.data_dir() / "mnist.npz") as f:
        n_max = np.bincount(f["y_train"]).min()
        test_labels = f["y_test"]
    data, again, other = (_suite.task("mnist:exp100", seed) for seed in (0, 0, 1))
    assert data.family == "real-perceptual" and data.encoder == "cnn2d"
    assert tuple(data.image_shape) == (1, 28, 28) and data.n_features == 784
    assert sorted(_counts(data.y_train)) == sorted(long_tailed_counts(n_max, 10, 100))
    assert data.X_train.min() >= 0 and data.X_train.max() == 1.0
    np.testing.assert_array_equal(data.y_test, test_labels)  # the whole balanced split
    np.testing.assert_array_equal(data.X_train, again.X_train)
    assert _counts(other.y_train) != _counts(data.y_train)  # another seed, another head
    assert _suite.half("mnist:exp10") != _suite.half("mnist:exp100")


def test_the_tabular_tasks_ship_with_the_repository():
    # Every KEEL task reads a file shipped in benchmarks/data, so the
    # tabular half of the suite (and --quick) runs from a clone.
    tabular = [n for n in _suite.TASKS if n.startswith(("lt:", "binary:"))]
    assert len(tabular) == 28
    assert all(_suite.has_data(n, _suite.SHIPPED_DATA) for n in tabular)
    assert not _suite.has_data("mnist:exp100", _suite.SHIPPED_DATA)
    assert _suite.data_files("ucr:Crop-exp100") == ["ucr_Crop.npz"]
    assert _suite.data_files("perceptual:signal-exp100") == []


def test_the_cache_reads_and_appends_gzip(tmp_path):
    # The committed rows are gzip-compressed; appending adds a gzip member.
    import dev_suite
    path = tmp_path / "rows.jsonl.gz"
    for key in ("a", "b"):
        with dev_suite.open_cache(path, "a") as fh:
            fh.write('{"key": "%s", "x": 1}\n' % key)
    assert sorted(dev_suite.load_cache(path)) == ["a", "b"]
    plain = tmp_path / "rows.jsonl"
    with dev_suite.open_cache(plain, "a") as fh:
        fh.write('{"key": "c"}\n')
    assert list(dev_suite.load_cache(plain)) == ["c"]
