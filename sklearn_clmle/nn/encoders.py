"""Encoders and the unit-sphere embedding network (pure torch)."""

import torch
import torch.nn.functional as F
from torch import nn

from .functional import unit_normalize

__all__ = ["ConvEncoder", "FastDropout", "MLPEncoder", "EmbeddingNetwork",
           "MultiHeadEmbeddingNetwork", "PeriodicFeatureEmbedding"]


class FastDropout(nn.Dropout):
    """:class:`torch.nn.Dropout` whose masks cost a third of torch's on the CPU.

    torch's CPU dropout draws one 32-bit Bernoulli number per element: its
    masks make a training step of the default MLP a third slower than no
    dropout (``benchmarks/step_cost.py``). Here one 64-bit draw gives four
    16-bit uniforms, so ``p`` is rounded to a multiple of ``1 / 65536`` and
    the kept units are scaled by ``1 / (1 - p)`` of that rounded ``p``: the
    output's expectation is still the input. Other devices (whose fused
    dropout is cheap already), ``inplace=True``, evaluation and ``p`` of 0 or 1
    use torch's own dropout.
    """

    def forward(self, x):
        threshold = round(self.p * 65536)
        if (not self.training or threshold in (0, 65536) or x.device.type != "cpu"
                or self.inplace):
            return super().forward(x)
        n = x.numel()
        # random_ over the whole int64 range: every 16-bit lane is uniform
        # (the default int64 range leaves the top lane's sign bit 0).
        bits = torch.empty(-(-n // 4), dtype=torch.int64).random_(-2**63, 2**63 - 1)
        keep = bits.view(torch.int16)[:n].view(x.shape) >= threshold - 32768
        return x * keep.to(x.dtype).mul_(65536 / (65536 - threshold))


class PeriodicFeatureEmbedding(nn.Module):
    """Periodic embeddings of numerical features ("PLR", Gorishniy et al., 2022).

    Each feature ``x_j`` becomes ``ReLU(W_j [cos(2 pi c_j x_j), sin(2 pi c_j
    x_j)] + b_j)``: ``n_frequencies`` trainable frequencies ``c_j`` and a
    linear layer of its own per feature, so the network sees a learnt,
    non-linear coding of each column before the columns are mixed (an MLP
    on raw columns must build those bumps and steps out of ReLUs). The
    frequencies start at ``N(0, frequency_scale^2)`` (truncated at 3
    standard deviations): small scales start almost linear in
    standardised inputs and learn higher frequencies only where they help.

    Parameters
    ----------
    in_features : int
        Number of numerical features.
    n_frequencies : int, default=48
        Frequencies per feature.
    frequency_scale : float, default=0.01
        Standard deviation of the initial frequencies.
    embedding_dim : int, default=24
        Output dimension per feature; the output has ``in_features *
        embedding_dim`` columns.
    """

    def __init__(self, in_features, n_frequencies=48, frequency_scale=0.01, embedding_dim=24):
        super().__init__()
        if frequency_scale <= 0:
            raise ValueError(f"frequency_scale must be positive; got {frequency_scale}.")
        self.frequency_scale = frequency_scale
        self.frequencies = nn.Parameter(torch.empty(in_features, n_frequencies))
        # One linear layer per feature, applied together as a batched product.
        self.weight = nn.Parameter(torch.empty(in_features, 2 * n_frequencies, embedding_dim))
        self.bias = nn.Parameter(torch.empty(in_features, embedding_dim))
        self.reset_parameters()

    def reset_parameters(self):
        scale = self.frequency_scale
        nn.init.trunc_normal_(self.frequencies, 0.0, scale, a=-3 * scale, b=3 * scale)
        # nn.Linear's default initialisation, per feature.
        bound = self.weight.shape[1] ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    @property
    def out_features(self):
        return self.bias.numel()

    def forward(self, features):
        angles = 2 * torch.pi * self.frequencies * features.unsqueeze(-1)
        periodic = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
        # (batch, feature, 2k) x (feature, 2k, d) -> (batch, feature, d)
        embedded = torch.einsum("bfk,fkd->bfd", periodic, self.weight) + self.bias
        return F.relu(embedded).flatten(1)


class MLPEncoder(nn.Module):
    """Multi-layer perceptron for tabular features.

    Optional dropout on the inputs, optional periodic embeddings of the
    features (:class:`PeriodicFeatureEmbedding`), then ``Linear ->
    BatchNorm -> ReLU -> Dropout`` per hidden layer, then a linear
    projection to ``embedding_dim`` (none when ``embedding_dim=None``: the
    output is the last hidden layer, the shared trunk of
    :class:`MultiHeadEmbeddingNetwork`).
    Batch normalisation keeps the default learning rate usable on unscaled
    features.

    Parameters
    ----------
    in_features : int
        Number of input features.
    embedding_dim : int or None, default=64
        Output dimension; ``None`` ends with the last hidden layer.
    hidden_units : tuple of int, default=(512, 512)
        Width of each hidden layer.
    dropout : float, default=0.1
        Dropout probability after each hidden layer.
    input_dropout : float, default=0.0
        Dropout probability on the input features.
    feature_embedding : {"periodic"} or None, default=None
        ``"periodic"`` embeds every feature with
        :class:`PeriodicFeatureEmbedding` before the hidden layers.
    feature_embedding_params : dict or None, default=None
        Keyword arguments of :class:`PeriodicFeatureEmbedding`
        (``n_frequencies``, ``frequency_scale``, ``embedding_dim``).
    """

    def __init__(self, in_features, embedding_dim=64, hidden_units=(512, 512), dropout=0.1,
                 input_dropout=0.0, feature_embedding=None, feature_embedding_params=None):
        super().__init__()
        if feature_embedding not in (None, "periodic"):
            raise ValueError(f"feature_embedding must be None or 'periodic'; "
                             f"got {feature_embedding!r}.")
        if feature_embedding is None and feature_embedding_params:
            raise ValueError("feature_embedding_params apply only with "
                             "feature_embedding='periodic'.")
        layers = [FastDropout(input_dropout)] if input_dropout else []
        width = in_features
        if feature_embedding == "periodic":
            embedding = PeriodicFeatureEmbedding(in_features, **(feature_embedding_params or {}))
            layers.append(embedding)
            width = embedding.out_features
        for units in hidden_units:
            # In place: batch norm's backward does not need its output.
            layers += [nn.Linear(width, units), nn.BatchNorm1d(units), nn.ReLU(inplace=True),
                       FastDropout(dropout)]
            width = units
        if embedding_dim is not None:
            layers.append(nn.Linear(width, embedding_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, features):
        return self.layers(features)


class ConvEncoder(nn.Module):
    """Small convolutional encoder for images given as flattened rows.

    Each block is ``Conv3x3 -> BatchNorm -> ReLU`` twice, then 2x2 max
    pooling; the blocks double the channels. Global average pooling and a
    linear layer give the embedding (no linear layer when
    ``embedding_dim=None``: the pooled channels, a multi-head trunk). Rows of ``X`` are reshaped to
    ``image_shape``, so image data can pass through scikit-learn pipelines as
    a 2-d array.

    Parameters
    ----------
    image_shape : tuple of int
        ``(channels, height, width)`` of one image, e.g. ``(1, 8, 8)`` for
        scikit-learn's digits.
    embedding_dim : int or None, default=64
        Output dimension; ``None`` ends with the pooled channels.
    channels : tuple of int, default=(32, 64)
        Channels of each block; each block halves the height and width.
    dropout : float, default=0.1
        Dropout before the final linear layer.
    max_shift : int, default=0
        In training mode, translate each image by a random whole number of
        pixels in ``[-max_shift, max_shift]`` along each axis (zero padding),
        a standard augmentation for small images (the paper flips faces).
        Inference is never augmented.
    """

    def __init__(self, image_shape, embedding_dim=64, channels=(32, 64), dropout=0.1,
                 max_shift=0):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.max_shift = max_shift
        layers, width = [], self.image_shape[0]
        for out in channels:
            layers += [nn.Conv2d(width, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(),
                       nn.Conv2d(out, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True)]
            width = out
        self.features = nn.Sequential(*layers)
        projection = [] if embedding_dim is None else [nn.Linear(width, embedding_dim)]
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), *projection)

    def forward(self, features):
        images = features.reshape(features.shape[0], *self.image_shape)
        if self.training and self.max_shift:
            images = random_shift(images, self.max_shift)
        return self.head(self.features(images).mean(dim=(2, 3), keepdim=True))


def random_shift(images, max_shift):
    """Translate each image by random whole pixels in ``[-max_shift, max_shift]``.

    One batched ``grid_sample`` (zero padding) instead of a loop over images.
    """
    n, _, height, width = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), device=images.device)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    # align_corners=False: one pixel is 2 / size in normalised coordinates.
    theta[:, 0, 2] = -2.0 * shifts[:, 0] / width
    theta[:, 1, 2] = -2.0 * shifts[:, 1] / height
    grid = F.affine_grid(theta, images.shape, align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


class EmbeddingNetwork(nn.Module):
    """Wraps an encoder so that ``f(x)`` lies on the unit sphere (Sec. 3).

    Also holds a cosine classifier head, one unit vector per class, used by
    the softmax pre-training and the auxiliary softmax term.

    Parameters
    ----------
    encoder : nn.Module
        Maps a batch of inputs to ``(batch_size, embedding_dim)``.
    embedding_dim : int
        Output dimension of ``encoder``.
    n_classes : int
        Number of classes of the cosine head.

    Notes
    -----
    ``forward(features, index=None)`` returns ``(embeddings, cosine_logits)``;
    ``index`` is accepted (and ignored) so that the training loop can carry
    sample indices through skorch's batches.
    """

    def __init__(self, encoder, embedding_dim, n_classes):
        super().__init__()
        self.encoder = encoder
        self.class_weight = nn.Parameter(torch.randn(n_classes, embedding_dim) / embedding_dim**0.5)

    def embed(self, features):
        """Unit-norm embeddings of a batch."""
        out = self.encoder(features)
        return unit_normalize(out.reshape(out.shape[0], -1), dim=1)

    def forward(self, features, index=None):
        embeddings = self.embed(features)
        return embeddings, embeddings @ F.normalize(self.class_weight, dim=1).T


class MultiHeadEmbeddingNetwork(nn.Module):
    """A shared encoder trunk with one unit-sphere embedding head per attribute.

    The multi-label form of :class:`EmbeddingNetwork` (Sec. 5.3 of Huang et
    al.: "one extra 64-d FC layer is learned for each binary attribute").
    Head ``a`` is a linear layer on the trunk's output followed by unit
    normalisation; all heads are computed by one matrix product. Each head
    also has a cosine classifier with ``n_classes`` unit vectors, for the
    softmax pre-training.

    Parameters
    ----------
    encoder : nn.Module
        Shared trunk; maps a batch of inputs to ``(batch_size, ...)``.
    in_features : int
        Number of values per sample of the trunk's (flattened) output.
    embedding_dim : int
        Dimension of each head.
    n_heads : int
        Number of attributes.
    n_classes : int, default=2
        Classes of each head's cosine classifier.

    Notes
    -----
    ``forward(features, index=None)`` returns ``(embeddings, cosine_logits)``
    of shapes ``(batch_size, n_heads, embedding_dim)`` and ``(batch_size,
    n_heads, n_classes)``; :meth:`embed` returns the heads side by side,
    ``(batch_size, n_heads * embedding_dim)``, each block of unit norm.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.nn import MLPEncoder, MultiHeadEmbeddingNetwork
    >>> trunk = MLPEncoder(10, embedding_dim=None, hidden_units=(16,))
    >>> net = MultiHeadEmbeddingNetwork(trunk, 16, embedding_dim=4, n_heads=3)
    >>> embeddings, logits = net(torch.randn(5, 10))
    >>> tuple(embeddings.shape), tuple(logits.shape), tuple(net.embed(torch.randn(5, 10)).shape)
    ((5, 3, 4), (5, 3, 2), (5, 12))
    """

    def __init__(self, encoder, in_features, embedding_dim, n_heads, n_classes=2):
        super().__init__()
        self.encoder = encoder
        self.n_heads = n_heads
        self.embedding_dim = embedding_dim
        self.heads = nn.Linear(in_features, n_heads * embedding_dim)
        self.class_weight = nn.Parameter(
            torch.randn(n_heads, n_classes, embedding_dim) / embedding_dim**0.5)

    def head_embeddings(self, features):
        """Unit-norm embeddings of a batch, ``(batch_size, n_heads, embedding_dim)``."""
        out = self.encoder(features)
        heads = self.heads(out.reshape(out.shape[0], -1))
        return unit_normalize(heads.reshape(-1, self.n_heads, self.embedding_dim), dim=2)

    def embed(self, features):
        """The heads side by side, ``(batch_size, n_heads * embedding_dim)``."""
        return self.head_embeddings(features).flatten(1)

    def forward(self, features, index=None):
        embeddings = self.head_embeddings(features)
        logits = torch.einsum("nhd,hcd->nhc", embeddings, F.normalize(self.class_weight, dim=2))
        return embeddings, logits
