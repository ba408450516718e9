"""Sparse feature rows (CSR / CSC): densified a batch at a time, never whole."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, SoftmaxEmbedder
from sklearn_clmle._torch_data import input_batches
from sklearn_clmle.nn.sparse_rows import SparseRows

from .conftest import TINY


def _tiny(**params):
    return CLMLEEmbedder(**{**TINY, "module_params": dict(TINY["module_params"]), **params})


def _categories(n, seed):
    """Three categorical columns of 12 levels; the minority (about 1 in 6) is
    every row whose first column takes one of two levels."""
    rng = np.random.RandomState(seed)
    codes = rng.randint(0, 12, size=(n, 3))
    return codes, (codes[:, 0] < 2).astype(int)


@pytest.fixture(scope="module")
def one_hot():
    codes, y = _categories(300, 0)
    X = OneHotEncoder().fit_transform(codes).astype(np.float32).tocsr()
    # A numeric column with its own scale beside the one-hot block.
    amounts = sp.csr_matrix(np.random.RandomState(1).lognormal(3, 1, (300, 1)))
    return sp.hstack([X, amounts], format="csr").astype(np.float32), y


@pytest.fixture(scope="module")
def sparse_fit(one_hot):
    X, y = one_hot
    return _tiny(n_estimators=1, input_weight=0.0).fit(X, y)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(1, 12), density=st.floats(0, 1),
       seed=st.integers(0, 2**16), scaled=st.booleans())
def test_sparse_rows_densify_like_the_scaled_array(n, d, density, seed, scaled):
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=density, format="csr", dtype=np.float32, random_state=rng)
    X.data = (X.data * 10 - 5).astype(np.float32)
    dense = X.toarray()
    scaler = StandardScaler().fit(dense) if scaled else None
    expected = scaler.transform(dense) if scaled else dense
    rows = SparseRows.from_csr(X.indptr, X.indices, X.data, d,
                               center=scaler.mean_ if scaled else None,
                               scale=scaler.scale_ if scaled else None)
    assert rows.shape == (n, d) and len(rows) == n
    # The same floats as StandardScaler on the dense array, not just close.
    assert_array_equal(rows.to_dense().numpy(), expected)
    pick = rng.randint(0, n, size=rng.randint(0, 2 * n + 1))  # repeats, any order, or none
    assert_array_equal(rows[torch.from_numpy(pick)].to_dense().numpy(), expected[pick])
    assert_array_equal(rows[n // 3:n - 1].to_dense().numpy(), expected[n // 3:n - 1])
    batches = list(input_batches(rows, 7))
    assert [len(b) for b in batches] == [len(b) for b in np.array_split(
        expected, range(7, n, 7))]
    assert_array_equal(torch.cat(batches).numpy(), expected)


def test_repeated_cells_add_up_as_in_scipy():
    # A COO matrix converted without summing keeps both entries of a cell.
    X = sp.csr_matrix((np.array([1.0, 2.0, 4.0], dtype=np.float32),
                       np.array([1, 1, 0]), np.array([0, 2, 3])), shape=(2, 3))
    rows = SparseRows.from_csr(X.indptr, X.indices, X.data, 3)
    assert_array_equal(rows.to_dense().numpy(), X.toarray())


def test_transform_of_sparse_rows_equals_that_of_the_dense_rows(sparse_fit, one_hot):
    X, _ = one_hot
    Z = sparse_fit.transform(X)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    # The same network inputs, so the same floats, whatever the form.
    assert_array_equal(sparse_fit.transform(X.toarray()), Z)
    assert_array_equal(sparse_fit.transform(X.tocsc()), Z)
    assert_array_equal(sparse_fit.transform(X.tocoo()), Z)


def test_a_dense_fit_embeds_sparse_rows(one_hot):
    X, y = one_hot
    dense_fit = _tiny(n_estimators=1, input_weight=0.0).fit(X.toarray(), y)
    assert_array_equal(dense_fit.transform(X), dense_fit.transform(X.toarray()))


def test_scaler_of_sparse_rows_has_the_dense_statistics(sparse_fit, one_hot):
    X, _ = one_hot
    dense = StandardScaler().fit(X.toarray())
    assert sparse_fit.estimators_[0].scaler_.with_mean  # centred batch by batch
    np.testing.assert_allclose(sparse_fit.estimators_[0].scaler_.mean_, dense.mean_, rtol=1e-6)
    np.testing.assert_allclose(sparse_fit.estimators_[0].scaler_.scale_, dense.scale_, rtol=1e-6)


def test_ensemble_on_sparse_rows_has_no_input_rows(one_hot):
    X, y = one_hot
    embedder = _tiny(n_estimators=2).fit(X, y)  # input_weight="auto"
    assert embedder.input_weight_ == 0.0
    assert not hasattr(embedder, "input_weight_scores_")
    Z = embedder.transform(X)
    assert Z.shape == (X.shape[0], 2 * embedder.embedding_dim_)
    assert_array_equal(embedder.transform(X.toarray()), Z)


def test_other_embedders_take_sparse_rows(one_hot):
    X, y = one_hot
    embedder = SoftmaxEmbedder(max_epochs=2, batch_size=32, random_state=0, device="cpu",
                               embedding_dim=8, module_params=dict(hidden_units=(16,))).fit(X, y)
    assert_array_equal(embedder.transform(X), embedder.transform(X.toarray()))


def test_one_hot_pipeline_learns_the_rule():
    codes, y = _categories(600, 2)
    test_codes, y_test = _categories(400, 3)
    pipe = make_pipeline(
        OneHotEncoder(handle_unknown="ignore"),  # CSR
        CLMLEEmbedder(n_estimators=1, n_rounds=1, pretrain_steps=150, steps_per_round=30,
                      embedding_dim=16, module_params=dict(hidden_units=(32,)),
                      device="cpu", random_state=0),
        KNearestClusterClassifier(device="cpu", random_state=0))
    pipe.fit(codes, y)
    # The rule is one column's two levels: far above chance (0.5) on any kernel path.
    assert balanced_accuracy_score(y_test, pipe.predict(test_codes)) > 0.85


def test_quantile_scaling_refuses_sparse_rows(one_hot):
    X, y = one_hot
    with pytest.raises(ValueError, match="feature_scaling='quantile'.*sparse.*'standard'"):
        _tiny(n_estimators=1, feature_scaling="quantile").fit(X, y)
    fitted = _tiny(n_estimators=1, input_weight=0.0, feature_scaling="quantile").fit(
        X.toarray(), y)
    with pytest.raises(ValueError, match="fitted with feature_scaling='quantile'.*toarray"):
        fitted.transform(X)


def test_input_rows_refuse_sparse_rows(one_hot):
    X, y = one_hot
    with pytest.raises(ValueError, match="input_weight=0.5.*sparse X.*input_weight=0"):
        _tiny(n_estimators=1, input_weight=0.5).fit(X, y)


def test_unscaled_sparse_rows_reach_the_network_as_given(one_hot):
    X, y = one_hot
    embedder = _tiny(n_estimators=1, input_weight=0.0, feature_scaling=None).fit(X, y)
    assert embedder.estimators_[0].scaler_ is None
    assert_array_equal(embedder.transform(X), embedder.transform(X.toarray()))
