"""Image arrays (n, [channels,] height, width) as embedder inputs."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.pipeline import Pipeline

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, PairEmbedder, SoftmaxEmbedder
from sklearn_clmle.metrics import balanced_accuracy
from sklearn_clmle.nn import ConvEncoder, MLPEncoder

from .conftest import FAST, TINY

SMALL_CNN = dict(channels=(8,))


@pytest.fixture(scope="module")
def digit_images(long_tailed_digits):
    data = long_tailed_digits
    return (data.X_train.reshape(-1, 1, 8, 8), data.y_train,
            data.X_test.reshape(-1, 1, 8, 8), data.y_test)


@pytest.mark.parametrize("make", [
    lambda: CLMLEEmbedder(**{**TINY, "module_params": SMALL_CNN}, n_estimators=1),
    lambda: SoftmaxEmbedder(max_epochs=1, random_state=0, device="cpu",
                            module_params=SMALL_CNN),
    lambda: PairEmbedder(max_epochs=1, random_state=0, device="cpu", module_params=SMALL_CNN),
], ids=["clmle", "softmax", "pair"])
def test_image_arrays_get_a_conv_encoder_by_default(make, digit_images):
    X, y, X_test, _ = digit_images
    emb = make().fit(X, y)
    assert isinstance(emb.estimators_[0].module_.encoder, ConvEncoder)
    assert emb.input_shape_ == (1, 8, 8) and emb.n_features_in_ == 1
    Z = emb.transform(X_test)
    assert Z.shape == (len(X_test), emb.embedding_dim_)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)


def test_images_without_channel_axis_are_single_channel(digit_images):
    X, y, X_test, _ = digit_images
    emb = CLMLEEmbedder(**{**TINY, "module_params": SMALL_CNN}, n_estimators=1).fit(X[:, 0], y)
    assert emb.estimators_[0].module_.encoder.image_shape == (1, 8, 8)
    assert emb.transform(X_test[:, 0]).shape == (len(X_test), emb.embedding_dim_)


@pytest.mark.cpu_bits
def test_images_and_their_rows_train_the_same_network(digit_images):
    # The default CNN on images and an explicit ConvEncoder on the same
    # pixels as rows are one computation: identical embeddings.
    X, y, X_test, _ = digit_images
    on_images = CLMLEEmbedder(**{**TINY, "module_params": SMALL_CNN}).fit(X, y)
    on_rows = CLMLEEmbedder(**{**TINY, "module": ConvEncoder,
                               "module_params": dict(image_shape=(1, 8, 8), embedding_dim=8,
                                                     **SMALL_CNN)})
    on_rows.fit(X.reshape(len(X), -1), y)
    assert_array_equal(on_images.transform(X_test),
                       on_rows.transform(X_test.reshape(len(X_test), -1)))


@pytest.mark.float_path
def test_cnn_on_images_learns(digit_images):
    X, y, X_test, y_test = digit_images
    emb = CLMLEEmbedder(**{**FAST, "pretrain_steps": 30, "steps_per_round": 15,
                           "module_params": SMALL_CNN})
    pipe = Pipeline([("emb", emb),
                     ("clf", KNearestClusterClassifier(random_state=0))])
    pipe.fit(X, y)
    # A tiny CNN on a short schedule: 0.55 observed; chance is 0.1.
    assert balanced_accuracy(y_test, pipe.predict(X_test)) > 0.4


@pytest.mark.parametrize("X_bad, message", [
    (np.zeros((5, 1, 8, 7)), r"fitted on inputs of shape \(1, 8, 8\) per sample; got \(1, 8, 7\)"),
    (np.zeros((5, 64)), r"got \(64,\)"),
    (np.zeros((5, 1, 1, 8, 8)), "accepts feature rows"),
])
def test_transform_names_a_wrong_input_shape(X_bad, message, digit_images):
    X, y, _, _ = digit_images
    emb = CLMLEEmbedder(**{**TINY, "module_params": SMALL_CNN}).fit(X, y)
    with pytest.raises(ValueError, match=message):
        emb.transform(X_bad)


def test_fit_refuses_five_dimensional_inputs(digit_images):
    X, y, _, _ = digit_images
    with pytest.raises(ValueError, match="accepts feature rows"):
        CLMLEEmbedder(**TINY).fit(X[:, None], y)


def test_module_that_cannot_read_images_is_named(digit_images):
    X, y, _, _ = digit_images
    with pytest.raises(ValueError, match=r"accepts inputs of shape \(1, 8, 8\)"):
        CLMLEEmbedder(**{**TINY, "module": MLPEncoder,
                         "module_params": dict(in_features=64)}).fit(X, y)


def test_nan_in_images_is_refused(digit_images):
    X, y, _, _ = digit_images
    X = X.copy()
    X[3, 0, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CLMLEEmbedder(**TINY).fit(X, y)


@pytest.mark.cpu_bits
def test_test_time_flip_concatenates_image_and_mirror(digit_images):
    X, y, X_test, _ = digit_images
    params = {**TINY, "module_params": SMALL_CNN, "n_estimators": 1}  # one network's layout
    plain = CLMLEEmbedder(**params).fit(X, y)
    flipped = CLMLEEmbedder(**params, test_time_flip=True).fit(X, y)
    Z = flipped.transform(X_test)
    dim = plain.embedding_dim_
    assert Z.shape == (len(X_test), 2 * dim)
    assert len(flipped.get_feature_names_out()) == 2 * dim
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    # Training is untouched: the first half is the plain embedding.
    np.testing.assert_allclose(Z[:, :dim] * np.sqrt(2), plain.transform(X_test), atol=1e-6)
    # Mirroring the input swaps the halves: the output is flip-invariant up to order.
    Z_mirror = flipped.transform(X_test[..., ::-1].copy())
    np.testing.assert_allclose(Z_mirror, np.hstack([Z[:, dim:], Z[:, :dim]]), atol=1e-6)


def test_test_time_flip_needs_images(small_long_tailed):
    X, y = small_long_tailed
    with pytest.raises(ValueError, match="test_time_flip=True .* needs image inputs"):
        CLMLEEmbedder(**TINY, test_time_flip=True).fit(X, y)
