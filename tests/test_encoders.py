"""Encoders: output shapes, options, and use inside CLMLEEmbedder."""

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_clmle import CLMLEEmbedder
from sklearn_clmle.nn import ConvEncoder, FastDropout, MLPEncoder


def test_mlp_encoder_shape_and_layers():
    encoder = MLPEncoder(10, embedding_dim=7, hidden_units=(32, 16), input_dropout=0.2)
    assert encoder(torch.randn(5, 10)).shape == (5, 7)
    linears = [m for m in encoder.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 32), (32, 16), (16, 7)]
    assert isinstance(encoder.layers[0], nn.Dropout) and encoder.layers[0].p == 0.2


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_fast_dropout_drops_a_fraction_p_and_keeps_the_expectation(p):
    x = torch.full((400, 512), 2.0, requires_grad=True)
    torch.manual_seed(0)
    out = FastDropout(p)(x)
    kept = out != 0
    # 204,800 units: the dropped fraction is within 5 standard deviations of p.
    assert abs((~kept).float().mean().item() - p) < 5 * (p * (1 - p) / x.numel()) ** 0.5
    # Kept units are scaled by 1 / (1 - p) of p rounded to 1/65536.
    scale = 65536 / (65536 - round(p * 65536))
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 2.0 * scale))
    assert abs(out.mean().item() - 2.0) < 0.02
    # The gradient goes through the kept units only, with the same scale.
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() * scale)


def test_fast_dropout_lanes_are_independent():
    # Every 16-bit lane of a 64-bit draw is uniform: no position in a group
    # of four units is kept more often than the others.
    torch.manual_seed(1)
    dropped = (FastDropout(0.5)(torch.ones(200_000, 4)) == 0).float().mean(dim=0)
    assert torch.all((dropped - 0.5).abs() < 0.01), dropped


def test_fast_dropout_is_torch_dropout_where_it_does_not_draw():
    x = torch.randn(8, 5)
    assert torch.equal(FastDropout(0.3).eval()(x), x)
    torch.manual_seed(0)
    assert torch.equal(FastDropout(0.0)(x), x)
    assert torch.equal(FastDropout(1.0)(x), torch.zeros_like(x))
    # Same draws as torch's own dropout under the same seed when in place.
    torch.manual_seed(3)
    expected = nn.Dropout(0.3)(x.clone())
    torch.manual_seed(3)
    torch.testing.assert_close(FastDropout(0.3, inplace=True)(x.clone()), expected)


def test_fast_dropout_is_seeded_by_torch():
    x = torch.randn(64, 32)
    masks = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        masks.append(FastDropout(0.2)(x) == 0)
    assert torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])


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


def test_periodic_feature_embedding_matches_plain_python_formula():
    import math

    from sklearn_clmle.nn import PeriodicFeatureEmbedding

    torch.manual_seed(0)
    embedding = PeriodicFeatureEmbedding(3, n_frequencies=4, frequency_scale=0.5, embedding_dim=5)
    x = torch.randn(6, 3)
    out = embedding(x)
    assert out.shape == (6, 15) and embedding.out_features == 15
    c, W, b = (embedding.frequencies.detach().tolist(), embedding.weight.detach().tolist(),
               embedding.bias.detach().tolist())
    for row in range(6):
        for j in range(3):
            value = x[row, j].item()
            coding = ([math.cos(2 * math.pi * f * value) for f in c[j]]
                      + [math.sin(2 * math.pi * f * value) for f in c[j]])
            for d in range(5):
                expected = max(0.0, sum(w[d] * v for w, v in zip(W[j], coding)) + b[j][d])
                assert out[row, j * 5 + d].item() == pytest.approx(expected, abs=1e-5)


def test_periodic_feature_embedding_codes_each_feature_on_its_own():
    from sklearn_clmle.nn import PeriodicFeatureEmbedding

    embedding = PeriodicFeatureEmbedding(4, embedding_dim=3)
    x = torch.randn(5, 4)
    changed = x.clone()
    changed[:, 2] += 1.0
    before, after = embedding(x).view(5, 4, 3), embedding(changed).view(5, 4, 3)
    torch.testing.assert_close(before[:, [0, 1, 3]], after[:, [0, 1, 3]])
    assert not torch.allclose(before[:, 2], after[:, 2])


def test_periodic_feature_embedding_initial_frequencies():
    from sklearn_clmle.nn import PeriodicFeatureEmbedding

    torch.manual_seed(0)
    frequencies = PeriodicFeatureEmbedding(50, n_frequencies=200, frequency_scale=0.1).frequencies
    assert frequencies.abs().max() <= 0.3  # truncated at three standard deviations
    assert 0.085 < frequencies.std().item() < 0.1
    with pytest.raises(ValueError, match="frequency_scale must be positive"):
        PeriodicFeatureEmbedding(2, frequency_scale=0.0)


def test_mlp_encoder_with_periodic_feature_embedding():
    encoder = MLPEncoder(6, embedding_dim=4, hidden_units=(16,), feature_embedding="periodic",
                         feature_embedding_params={"embedding_dim": 8, "n_frequencies": 3})
    assert encoder(torch.randn(7, 6)).shape == (7, 4)
    first = next(m for m in encoder.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 6 * 8
    with pytest.raises(ValueError, match="feature_embedding must be None or 'periodic'"):
        MLPEncoder(6, feature_embedding="piecewise")
    with pytest.raises(ValueError, match="apply only with feature_embedding='periodic'"):
        MLPEncoder(6, feature_embedding_params={"n_frequencies": 3})


@pytest.mark.cpu_bits
def test_embedder_with_periodic_feature_embedding_is_seeded(small_long_tailed, fast_params):
    X, y = small_long_tailed
    params = dict(n_estimators=1, module_params={"feature_embedding": "periodic"}, **fast_params)
    first = CLMLEEmbedder(**params).fit(X, y)
    Z = first.transform(X)
    assert Z.shape == (len(X), first.embedding_dim) and np.isfinite(Z).all()
    np.testing.assert_array_equal(Z, CLMLEEmbedder(**params).fit(X, y).transform(X))
