"""Encoders: output shapes, options, and use inside CLMLEEmbedder."""

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_clmle import CLMLEEmbedder
from sklearn_clmle.nn import ConvEncoder, MLPEncoder


def test_mlp_encoder_shape_and_layers():
    encoder = MLPEncoder(10, embedding_dim=7, hidden_units=(32, 16), input_dropout=0.2)
    assert encoder(torch.randn(5, 10)).shape == (5, 7)
    linears = [m for m in encoder.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 32), (32, 16), (16, 7)]
    assert isinstance(encoder.layers[0], nn.Dropout) and encoder.layers[0].p == 0.2


def test_mlp_encoder_without_input_dropout_starts_with_linear():
    assert isinstance(MLPEncoder(4).layers[0], nn.Linear)


@pytest.mark.parametrize("image_shape", [(1, 8, 8), (3, 5, 7)])
def test_conv_encoder_reads_flattened_images(image_shape):
    encoder = ConvEncoder(image_shape, embedding_dim=12, channels=(4, 8)).eval()
    flat = torch.randn(6, int(np.prod(image_shape)))
    out = encoder(flat)
    assert out.shape == (6, 12)
    # Rows are images: feeding the reshaped batch gives the same result.
    torch.testing.assert_close(out, encoder(flat.reshape(6, *image_shape)))


def test_embedder_with_conv_encoder(small_long_tailed, fast_params):
    X, y = small_long_tailed
    emb = CLMLEEmbedder(module=ConvEncoder,
                        module_params={"image_shape": (1, 8, 8), "channels": (4, 8),
                                       "embedding_dim": 16},
                        n_estimators=1, **fast_params).fit(X, y)
    Z = emb.transform(X)
    assert Z.shape == (len(X), 16) and emb.embedding_dim_ == 16
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)


def test_random_shift_moves_whole_images_by_at_most_max_shift():
    from sklearn_clmle.nn.encoders import random_shift

    torch.manual_seed(0)
    images = torch.rand(50, 1, 6, 6) + 1.0  # strictly positive: padding shows as 0
    shifted = random_shift(images, 1)
    for original, moved in zip(images, shifted):
        matches = [
            (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
            if torch.equal(moved[0, max(dy, 0):6 + min(dy, 0), max(dx, 0):6 + min(dx, 0)],
                           original[0, max(-dy, 0):6 - max(dy, 0), max(-dx, 0):6 - max(dx, 0)])
        ]
        assert len(matches) == 1
        dy, dx = matches[0]
        assert int((moved == 0).sum()) == 6 * (abs(dy) + abs(dx)) - abs(dy * dx)
    assert not torch.equal(shifted, images)  # some image did move


def test_conv_encoder_shifts_only_while_training():
    # No dropout: in training mode only the shift is random.
    encoder = ConvEncoder((1, 8, 8), embedding_dim=4, channels=(2,), max_shift=1, dropout=0.0)
    flat = torch.rand(10, 64)
    encoder.eval()
    torch.testing.assert_close(encoder(flat), encoder(flat))
    encoder.train()
    torch.manual_seed(0)
    first = encoder(flat)
    torch.manual_seed(1)
    assert not torch.allclose(first, encoder(flat))
