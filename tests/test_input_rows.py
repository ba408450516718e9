"""``CLMLEEmbedder(input_weight=...)``: the scaled input rows beside the embedding."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler
from torch.utils.data import TensorDataset

import torch

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, PairEmbedder, SoftmaxEmbedder
from sklearn_clmle.nn import MLPEncoder
from sklearn_clmle._settings import INPUT_WEIGHT_CHOICE, with_settings
from sklearn_clmle._ensemble import input_weight_classifier
from sklearn_clmle._input_rows import (capped_rows,
                                       cross_fit_folds, preferred_weight, side_by_side)

from .conftest import TINY, network_embedding


def _tiny(**params):
    return CLMLEEmbedder(**{**TINY, "module_params": dict(TINY["module_params"]), **params})


@pytest.fixture(scope="module")
def rows_data():
    # Informative raw rows, a minority of 30: the nearest-cluster rule on the
    # scaled rows does well, a barely trained network does not.
    X, y = make_classification(400, 8, n_informative=4, n_redundant=0, weights=[0.92],
                               class_sep=1.5, random_state=3)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def auto_fit(rows_data):
    X, y = rows_data
    return _tiny(n_estimators=3, input_weight="auto").fit(X, y)


def _cosines(Z):
    return Z @ Z.T


@given(st.floats(0.01, 0.99))
@settings(max_examples=25, deadline=None)
def test_side_by_side_cosine_is_the_weighted_mean(weight):
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((6, 4)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    rows = rng.standard_normal((6, 3)).astype(np.float32) * 5
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    mixed = side_by_side(emb, rows, weight)
    assert mixed.dtype == np.float32 and mixed.shape == (6, 7)
    assert_allclose(np.linalg.norm(mixed, axis=1), 1.0, atol=1e-5)
    assert_allclose(_cosines(mixed), (1 - weight) * _cosines(emb) + weight * _cosines(unit),
                    atol=1e-5)


@given(st.lists(st.sampled_from([0.5, 0.6, 0.62, 0.65, 0.7, 0.9, 1.0]), min_size=3,
                max_size=3), st.sampled_from([0.0, 0.02, INPUT_WEIGHT_CHOICE.tolerance]))
@settings(max_examples=100, deadline=None)
def test_preferred_weight_matches_a_plain_oracle(values, tolerance):
    means = dict(zip(INPUT_WEIGHT_CHOICE.grid, values))
    # Oracle: the embedding alone unless some weight beats it by more than
    # the tolerance; then the best, the smallest weight among equals.
    others = [w for w in INPUT_WEIGHT_CHOICE.grid if w and means[w] > means[0.0] + tolerance]
    if not others:
        expected = 0.0
    else:
        top = max(means[w] for w in others)
        expected = min(w for w in others if means[w] == top)
    assert preferred_weight(means, tolerance) == expected


@given(st.lists(st.integers(1, 60), min_size=1, max_size=8), st.integers(1, 200))
@settings(max_examples=80, deadline=None)
def test_capped_rows_keep_small_classes_whole(counts, cap):
    y = np.repeat(np.arange(len(counts)), counts)
    rows = np.arange(len(y))[::-1].copy()  # any order in, sorted out
    kept = capped_rows(rows, y, cap, np.random.RandomState(0))
    assert np.all(np.diff(kept) > 0) and set(kept) <= set(rows)
    if len(y) <= cap:
        assert len(kept) == len(y)
        return
    per_class = np.bincount(y[kept], minlength=len(counts))
    level = per_class.max()
    # Every class keeps min(count, level) rows: the small ones whole.
    assert np.array_equal(per_class, np.minimum(counts, level))
    # The level is the highest that fits the cap (or 1 if even that does not).
    assert per_class.sum() <= cap or level == 1
    assert level == max(counts) or np.minimum(counts, level + 1).sum() > cap


@pytest.mark.cpu_bits
def test_large_folds_are_subsampled_for_the_choice(rows_data, monkeypatch):
    # Above the choice's max_rows its classifier sees a capped sample: the
    # fit still chooses, and reproducibly. Other settings come by a subclass,
    # which clone keeps (the ensemble clones its members from it).
    X, y = rows_data
    Embedder = with_settings(CLMLEEmbedder, "_input_weight_choice", max_rows=60)
    seen = []
    fit = KNearestClusterClassifier.fit

    def spy(self, Z, labels, sample_weight=None):
        seen.append(len(labels))
        return fit(self, Z, labels, sample_weight=sample_weight)

    monkeypatch.setattr(KNearestClusterClassifier, "fit", spy)
    params = {**TINY, "module_params": dict(TINY["module_params"]), "n_estimators": 3,
              "input_weight": "auto"}
    emb = Embedder(**params).fit(X, y)
    assert len(seen) == 9 and max(seen) <= 60
    assert set(emb.input_weight_scores_) == set(INPUT_WEIGHT_CHOICE.grid)
    # The minority keeps all its training rows of the fold (about 21 of 32).
    again = Embedder(**params).fit(X, y)
    assert again.input_weight_scores_ == emb.input_weight_scores_


def test_side_by_side_keeps_huge_rows_unit_norm():
    # float32 squares overflow above ~1e19: the norm is then taken in float64.
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((5, 4)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    rows = (rng.standard_normal((5, 3)) * 1e25).astype(np.float32)
    mixed = side_by_side(emb, rows, 0.9)
    assert np.isfinite(mixed).all()
    assert_allclose(np.linalg.norm(mixed, axis=1), 1.0, atol=1e-5)


def test_fixed_weight_puts_the_scaled_rows_beside_the_embedding(rows_data):
    X, y = rows_data
    plain = _tiny(n_estimators=1).fit(X, y)
    mixed = _tiny(n_estimators=1, input_weight=0.5).fit(X, y)
    assert plain.input_weight_ == 0.0 and not hasattr(plain, "input_scaler_")
    assert mixed.input_weight_ == 0.5
    Z, M = plain.transform(X[:20]), mixed.transform(X[:20])
    assert M.shape == (20, Z.shape[1] + X.shape[1])
    names = mixed.get_feature_names_out()
    assert len(names) == M.shape[1]
    assert list(names[-X.shape[1]:]) == [f"clmleembedder_input_x{j}" for j in range(X.shape[1])]
    rows = StandardScaler().fit(X).transform(X[:20])
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    # The network is the same one (input_weight changes nothing in training).
    assert_allclose(M[:, :Z.shape[1]], Z * np.sqrt(0.5), atol=1e-6)
    assert_allclose(M[:, Z.shape[1]:], unit * np.sqrt(0.5), atol=1e-5)


@pytest.mark.float_path
def test_auto_cross_fits_the_members_and_keeps_the_best_weight(rows_data, auto_fit):
    X, y = rows_data
    emb = auto_fit
    # Every member trained on two thirds of the rows, stratified.
    for member in emb.estimators_:
        assert member.scaler_.n_samples_seen_ in (266, 267) and member.n_samples_ in (266, 267)
    scores = emb.input_weight_scores_
    assert set(scores) == set(INPUT_WEIGHT_CHOICE.grid)
    best = max(scores.values())
    assert emb.input_weight_ == min(w for w, s in scores.items() if s == best)
    # On these rows the input rows help the barely trained networks.
    assert emb.input_weight_ > 0
    assert emb.transform(X[:5]).shape == (5, 3 * emb.embedding_dim_ + X.shape[1])


@pytest.mark.float_path
@pytest.mark.cpu_bits
def test_auto_choice_is_what_held_out_rows_say(rows_data, auto_fit):
    # Recompute the choice by hand: the folds from the first seed drawn from
    # random_state, each member's embedding, the classifier per weight.
    X, y = rows_data
    emb = auto_fit
    fold_seed = int(np.random.RandomState(TINY["random_state"]).randint(np.iinfo(np.int32).max))
    folds = cross_fit_folds(y, 3, fold_seed)
    rows = StandardScaler().fit(X).transform(X)
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    expected = {w: [] for w in INPUT_WEIGHT_CHOICE.grid}
    for member, (train, held_out) in zip(emb.estimators_, folds):
        # The member trained on exactly the rows outside its fold.
        assert_allclose(member.scaler_.mean_, X[train].mean(axis=0), rtol=1e-5, atol=1e-6)
        Z = network_embedding(emb, member, X)
        for w in INPUT_WEIGHT_CHOICE.grid:
            Zw = Z if w == 0 else np.hstack([Z * np.sqrt(1 - w), unit * np.sqrt(w)])
            clf = KNearestClusterClassifier(random_state=fold_seed).fit(Zw[train], y[train])
            expected[w].append(balanced_accuracy_score(y[held_out], clf.predict(Zw[held_out])))
    for w in INPUT_WEIGHT_CHOICE.grid:
        assert emb.input_weight_scores_[w] == pytest.approx(np.mean(expected[w]), abs=0.02)


@pytest.mark.float_path
def test_auto_beats_the_embedding_alone_where_rows_are_informative():
    # rows_data's distribution, with 2,200 test rows instead of 200: on 16
    # test minority rows one row moves a balanced accuracy by 0.03, and the
    # gain was 0.02-0.05 by float path; on 187 the gains of seeds 0-2 were
    # 0.10-0.21 on two float paths, every seed choosing w > 0 (seeds 0-1:
    # mean gains 0.16 and 0.135, so two seeds keep the floor far off).
    X, y = make_classification(2400, 8, n_informative=4, n_redundant=0, weights=[0.92],
                               class_sep=1.5, random_state=3)
    X = X.astype(np.float32)
    Xtr, ytr, Xte, yte = X[:200], y[:200], X[200:], y[200:]
    gains = []
    for seed in range(2):
        scores = {}
        for name, weight in (("plain", 0.0), ("auto", "auto")):
            emb = _tiny(n_estimators=3, input_weight=weight, random_state=seed).fit(Xtr, ytr)
            clf = KNearestClusterClassifier(random_state=0).fit(emb.transform(Xtr), ytr)
            scores[name] = balanced_accuracy_score(yte, clf.predict(emb.transform(Xte)))
        assert emb.input_weight_ > 0
        gains.append(scores["auto"] - scores["plain"])
    assert np.mean(gains) > 0.05, gains


def _case_data(case, X, y):
    """The rows, labels and extra parameters of a configuration without tabular rows."""
    extra = {}
    if case == "tiny class":
        y = y.copy()
        y[np.flatnonzero(y == 1)[1:]] = 0  # one row of class 1
    if case == "multi-label":
        y = np.column_stack([y, (X[:, 0] > 0).astype(int)])
    if case == "images":
        X = np.tile(X[:, :4].reshape(-1, 1, 2, 2), (1, 1, 4, 4))
        extra = {"module_params": None}  # the default CNN
    if case == "dataset":
        X, y = TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), None
    if case == "own module":
        extra = {"module": MLPEncoder, "module_params": dict(in_features=X.shape[1],
                                                             embedding_dim=8, hidden_units=(16,))}
    return X, y, extra


@pytest.mark.parametrize("case", ["one network", "tiny class", "multi-label", "images",
                                  "dataset", "own module"])
def test_auto_is_zero_where_it_cannot_choose(case, rows_data):
    X, y, extra = _case_data(case, *rows_data)
    n_estimators = 1 if case == "one network" else 2
    emb = _tiny(n_estimators=n_estimators, input_weight="auto", **extra).fit(X, y)
    assert emb.input_weight_ == 0.0
    assert not hasattr(emb, "input_scaler_") and not hasattr(emb, "input_weight_scores_")
    if case == "tiny class":
        # No cross-fitting there: every network saw every row.
        assert all(m.scaler_.n_samples_seen_ == len(y) for m in emb.estimators_)


@pytest.mark.parametrize("case", ["multi-label", "images", "dataset"])
def test_positive_weight_without_feature_rows_is_refused(case, rows_data):
    X, y, extra = _case_data(case, *rows_data)
    for n_estimators in (1, 2):
        with pytest.raises(ValueError, match="input_weight=0.5 puts the scaled feature rows"):
            _tiny(n_estimators=n_estimators, input_weight=0.5, **extra).fit(X, y)


def test_input_rows_survive_pickling_and_skops(rows_data, auto_fit):
    import skops.io as sio

    X, _ = rows_data
    blob = sio.dumps(auto_fit)
    for loaded in (pickle.loads(pickle.dumps(auto_fit)),
                   sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))):
        assert loaded.input_weight_ == auto_fit.input_weight_
        assert_array_equal(loaded.transform(X[:10]), auto_fit.transform(X[:10]))


def test_refits_do_not_keep_an_earlier_choice(rows_data):
    X, y = rows_data
    emb = _tiny(n_estimators=3, input_weight="auto").fit(X, y)
    assert hasattr(emb, "input_weight_scores_")
    emb.set_params(n_estimators=1).fit(X, y)
    assert emb.input_weight_ == 0.0
    assert not hasattr(emb, "input_weight_scores_") and not hasattr(emb, "input_scaler_")
    assert emb.transform(X[:3]).shape == (3, emb.embedding_dim_)
    emb.set_params(n_estimators=3, input_weight=0.0).fit(X, y)
    assert not hasattr(emb, "input_weight_scores_")
    assert emb.transform(X[:3]).shape == (3, 3 * emb.embedding_dim_)


@pytest.mark.cpu_bits
def test_auto_is_reproducible(rows_data, auto_fit):
    X, y = rows_data
    again = _tiny(n_estimators=3, input_weight="auto").fit(X, y)
    assert again.input_weight_scores_ == auto_fit.input_weight_scores_
    assert_array_equal(again.transform(X[:10]), auto_fit.transform(X[:10]))


@pytest.mark.parametrize("Embedder", [SoftmaxEmbedder, PairEmbedder])
def test_embedders_without_input_rows_have_no_input_weight_attribute(rows_data, Embedder):
    # Only embedders with an input_weight parameter report its fitted value.
    X, y = rows_data
    emb = Embedder(max_epochs=1, embedding_dim=8, module_params=dict(hidden_units=(16,)),
                   random_state=0, device="cpu").fit(X[:120], y[:120])
    assert not hasattr(emb, "input_weight_") and not hasattr(emb, "input_scaler_")
    assert emb.transform(X[:3]).shape == (3, 8)


def test_the_choice_skips_only_the_calibration(rows_data, auto_fit):
    # The default choice's classifier fits no calibration (predict never
    # reads it); the same classifier calibrating chooses the same.
    X, y = rows_data
    calibrating = _tiny(n_estimators=3, input_weight="auto", input_weight_estimator=(
        KNearestClusterClassifier(unknown_rate=None, device="cpu"))).fit(X, y)
    assert calibrating.input_weight_scores_ == auto_fit.input_weight_scores_
    Z = network_embedding(auto_fit, auto_fit.estimators_[0], X)
    predict_only = input_weight_classifier(auto_fit, 0, weighted=False).fit(Z, y)
    full = KNearestClusterClassifier(unknown_rate=None, random_state=0, device="cpu").fit(Z, y)
    assert predict_only.temperature_ == 1.0 and not predict_only.calibration_bias_.any()
    assert full.temperature_ != 1.0
    assert (predict_only.n_neighbors_, predict_only.prior_correction_) == (
        full.n_neighbors_, full.prior_correction_)
    assert_array_equal(predict_only.predict(Z), full.predict(Z))


def test_input_weight_estimator_chooses_with_the_given_classifier(rows_data, monkeypatch):
    # The choice fits and scores clones of the classifier the user names (the
    # one that follows the embedder), seeded from the embedder's random_state.
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier
    X, y = rows_data
    seen = []
    fit = DecisionTreeClassifier.fit

    def spy(self, Z, labels, sample_weight=None, check_input=True):
        seen.append((Z.shape[1], self.random_state))
        return fit(self, Z, labels, sample_weight=sample_weight, check_input=check_input)

    monkeypatch.setattr(DecisionTreeClassifier, "fit", spy)
    emb = _tiny(n_estimators=3, input_weight="auto",
                input_weight_estimator=DecisionTreeClassifier(max_depth=3)).fit(X, y)
    grid = INPUT_WEIGHT_CHOICE.grid
    assert len(seen) == 3 * len(grid)
    # w = 0 is the embedding alone; the other weights add the input rows.
    assert {width for width, _ in seen} == {emb.embedding_dim_, emb.embedding_dim_ + X.shape[1]}
    assert len({seed for _, seed in seen}) == 1 and seen[0][1] is not None
    assert set(emb.input_weight_scores_) == set(grid)
    # Another classifier scores the same members differently.
    logistic = _tiny(n_estimators=3, input_weight="auto",
                     input_weight_estimator=LogisticRegression()).fit(X, y)
    assert logistic.input_weight_scores_ != emb.input_weight_scores_
    again = _tiny(n_estimators=3, input_weight="auto",
                  input_weight_estimator=LogisticRegression()).fit(X, y)
    assert again.input_weight_scores_ == logistic.input_weight_scores_


def test_input_weight_estimator_is_refused_where_it_has_no_effect(rows_data):
    from sklearn.linear_model import LogisticRegression
    X, y = rows_data
    for weight in (0.0, 0.9):
        with pytest.raises(ValueError, match="input_weight_estimator.*no effect"):
            _tiny(n_estimators=3, input_weight=weight,
                  input_weight_estimator=LogisticRegression()).fit(X, y)


def test_input_weight_estimator_must_take_weights_when_given(rows_data):
    from sklearn.neighbors import KNeighborsClassifier
    X, y = rows_data
    weights = np.linspace(0.5, 2.0, len(y))
    with pytest.raises(ValueError, match="takes no sample_weight"):
        _tiny(n_estimators=3, input_weight="auto",
              input_weight_estimator=KNeighborsClassifier()).fit(X, y, sample_weight=weights)
