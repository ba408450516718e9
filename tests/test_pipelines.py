"""The estimators inside scikit-learn / imbalanced-learn tooling."""

import pickle

import joblib
import numpy as np
from scipy.special import softmax
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from sklearn_clmle import (
    CLMLEEmbedder,
    KNearestClusterClassifier,
    balanced_accuracy,
    balanced_accuracy_scorer,
)


def _pipeline(params):
    return Pipeline([("emb", CLMLEEmbedder(**params)),
                     ("clf", KNearestClusterClassifier(n_neighbors=5, random_state=0,
                                                       device="cpu"))])


@pytest.fixture(scope="module")
def fitted_pipeline(long_tailed_digits, fast_params):
    data = long_tailed_digits
    return _pipeline(fast_params).fit(data.X_train, data.y_train)


def test_pipeline_fit_predict(fitted_pipeline, long_tailed_digits):
    data = long_tailed_digits
    pred = fitted_pipeline.predict(data.X_test)
    assert pred.shape == data.y_test.shape
    assert set(pred) <= set(data.y_train)
    proba = fitted_pipeline.predict_proba(data.X_test)
    assert proba.shape == (len(data.X_test), 10)
    scores = fitted_pipeline.decision_function(data.X_test)
    np.testing.assert_array_equal(fitted_pipeline.classes_[scores.argmax(axis=1)], pred)
    # The classifier's calibrated softmax of those scores.
    clf = fitted_pipeline[-1]
    np.testing.assert_allclose(proba, softmax(scores / clf.temperature_ + clf.calibration_bias_,
                                              axis=1), rtol=1e-6, atol=1e-12)
    # observed 0.89 with these fast settings
    assert balanced_accuracy(data.y_test, pred) > 0.7


def test_imblearn_pipeline_with_smote(long_tailed_digits, fast_params):
    data = long_tailed_digits
    pipe = make_imb_pipeline(
        SMOTE(k_neighbors=2, random_state=0),  # the smallest class has 3 samples
        CLMLEEmbedder(**fast_params, n_estimators=1),
        KNearestClusterClassifier(n_neighbors=5, random_state=0, device="cpu"),
    ).fit(data.X_train, data.y_train)
    pred = pipe.predict(data.X_test)
    assert pred.shape == data.y_test.shape
    # the classifier saw the resampled, balanced classes: 144 // 5 clusters each
    clf = pipe[-1]
    np.testing.assert_array_equal(np.bincount(clf.cluster_classes_), [144 // 5] * 10)
    assert balanced_accuracy(data.y_test, pred) > 0.7


def test_grid_search_over_margins(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    grid = {"emb__inter_margin": [0.1, 0.3], "emb__intra_margin": [0.0, 0.05]}
    # One process: worker processes are test_distributed's (joblib's loky
    # workers would add their start-up, about 6 s, to this test).
    search = GridSearchCV(_pipeline({**tiny_params, "n_estimators": 1}), grid,
                          scoring="balanced_accuracy", cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert np.all(search.cv_results_["mean_test_score"] > 0.25)  # chance with 4 classes
    best = search.best_estimator_.named_steps["emb"]
    assert best.inter_margin == search.best_params_["emb__inter_margin"]
    assert best.intra_margin == search.best_params_["emb__intra_margin"]
    assert search.predict(X[:5]).shape == (5,)


def test_input_rows_beside_the_embedding(small_long_tailed, tiny_params):
    # The recipe of docs/method.md, section 10, for other embedders or
    # weights: a FeatureUnion of the embedder (here without input rows of its
    # own) and the unit-norm scaled rows, whose mix GridSearchCV tunes.
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    X, y = small_long_tailed
    union = FeatureUnion([("emb", CLMLEEmbedder(**tiny_params, input_weight=0.0)),
                          ("rows", make_pipeline(StandardScaler(), Normalizer()))])
    pipe = make_pipeline(union, KNearestClusterClassifier(n_neighbors=5, random_state=0,
                                                          device="cpu"))
    grid = {"featureunion__transformer_weights": [{"emb": 1, "rows": a} for a in (0, 3)]}
    search = GridSearchCV(pipe, grid, scoring="balanced_accuracy", cv=2).fit(X, y)
    assert np.all(search.cv_results_["mean_test_score"] > 0.25)  # chance with 4 classes
    assert search.predict(X[:5]).shape == (5,)
    # The documented mix: with weight a on the rows, the classifier's cosine
    # similarity is (1 - w) * the embedding's + w * the rows', w = a^2 / (1 + a^2).
    mixed = union.set_params(transformer_weights={"emb": 1, "rows": 3}).fit_transform(X, y)
    width = union.transformer_list[0][1].transform(X[:1]).shape[1]
    embedding, rows = mixed[:, :width], mixed[:, width:] / 3
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1, atol=1e-5)
    unit = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    np.testing.assert_allclose(unit @ unit.T,
                               0.1 * embedding @ embedding.T + 0.9 * rows @ rows.T, atol=1e-5)


def test_cross_validate_with_library_scorer(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    result = cross_validate(_pipeline(tiny_params), X, y, cv=cv,
                            scoring={"ours": balanced_accuracy_scorer,
                                     "sklearn": "balanced_accuracy"})
    assert result["test_ours"].shape == (2,)
    # the fits are deterministic, so both scorers rate the same predictions
    np.testing.assert_allclose(result["test_ours"], result["test_sklearn"])
    assert np.all(result["test_ours"] > 0.25)


@pytest.mark.cpu_bits
def test_clone(small_long_tailed, fast_params, fitted_pipeline):
    X, y = small_long_tailed
    pipe = _pipeline({**fast_params, "module_params": {"hidden_units": (32,)},
                      "n_estimators": 1})
    cloned = clone(pipe)
    assert cloned.get_params()["emb__module_params"] == {"hidden_units": (32,)}
    assert cloned.get_params()["emb__module_params"] is not pipe.get_params()["emb__module_params"]
    np.testing.assert_array_equal(cloned.fit(X, y).predict(X), pipe.fit(X, y).predict(X))
    unfitted = clone(fitted_pipeline)
    assert not hasattr(unfitted.named_steps["emb"], "module_")
    assert not hasattr(unfitted.named_steps["clf"], "cluster_centers_")


def _pickle_round_trip(obj, tmp_path):
    return pickle.loads(pickle.dumps(obj))


def _joblib_round_trip(obj, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(obj, path)
    return joblib.load(path)


@pytest.mark.parametrize("round_trip", [_pickle_round_trip, _joblib_round_trip],
                         ids=["pickle", "joblib"])
def test_persistence(fitted_pipeline, long_tailed_digits, round_trip, tmp_path):
    X = long_tailed_digits.X_test
    emb, clf = fitted_pipeline.named_steps["emb"], fitted_pipeline.named_steps["clf"]
    Z = emb.transform(X)

    emb2 = round_trip(emb, tmp_path)
    assert np.array_equal(emb2.transform(X), Z)
    # The default embedder is an ensemble of 3 networks, each with its history_.
    assert len(emb2.estimators_) == len(emb.estimators_) == 3
    for member2, member in zip(emb2.estimators_, emb.estimators_):
        assert member2.history_[:, "train_loss"] == member.history_[:, "train_loss"]

    clf2 = round_trip(clf, tmp_path)
    np.testing.assert_array_equal(clf2.predict(Z), clf.predict(Z))
    np.testing.assert_array_equal(clf2.decision_function(Z), clf.decision_function(Z))

    pipe2 = round_trip(fitted_pipeline, tmp_path)
    np.testing.assert_array_equal(pipe2.predict(X), fitted_pipeline.predict(X))
    np.testing.assert_array_equal(pipe2.predict_proba(X), fitted_pipeline.predict_proba(X))


def test_get_feature_names_out(fitted_pipeline):
    emb = fitted_pipeline.named_steps["emb"]
    names = emb.get_feature_names_out()
    assert names.dtype == object
    # three networks side by side (the default n_estimators=3), then the
    # input rows when input_weight="auto" put them beside the embedding
    width = 3 * emb.embedding_dim_
    assert list(names[:width]) == [f"clmleembedder{i}" for i in range(width)]
    inputs = [f"clmleembedder_input_x{j}" for j in range(emb.n_features_in_)]
    assert list(names[width:]) == (inputs if emb.input_weight_ else [])
    np.testing.assert_array_equal(fitted_pipeline[:-1].get_feature_names_out(), names)


@pytest.mark.cpu_bits
def test_string_labels_give_the_same_model(small_long_tailed, tiny_params):
    X, y = small_long_tailed
    names = np.array([f"digit {d}" for d in range(10)], dtype=object)
    pipe_int = _pipeline(tiny_params).fit(X, y)
    pipe_str = _pipeline(tiny_params).fit(X, names[y])
    assert list(pipe_str.classes_) == list(names[np.unique(y)])
    # labels sort in the same order, so the class codes and thus the fits agree
    assert np.array_equal(pipe_str.named_steps["emb"].transform(X),
                          pipe_int.named_steps["emb"].transform(X))
    np.testing.assert_array_equal(pipe_str.predict(X), names[pipe_int.predict(X)])
