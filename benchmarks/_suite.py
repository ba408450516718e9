"""Tasks of the development suite (``benchmarks/dev_suite.py``).

Every task is a function of a seed that returns a ``Bunch`` with
``X_train, y_train, X_test, y_test`` (feature rows, labels ``0..C-1``),
``train_counts`` and the task's metadata:

* ``name``, ``family`` (``"long-tail"``, ``"binary"``, ``"perceptual"`` or
  ``"real-perceptual"``),
  ``half`` (``"A"`` or ``"B"``, fixed: choose defaults on one half, confirm
  on the other) and ``encoder`` (``"mlp"``, ``"cnn2d"`` or ``"cnn1d"``: the
  encoder the deep methods use on it, see :func:`encoder_spec`).

The tasks:

``lt:<set>-exp10``, ``lt:<set>-exp100``
    The eight near-balanced multi-class KEEL sets of the data folder, each as
    an exponential long-tailed training split (imbalance 10 and 100) with a
    balanced test split of ``min(50, max(5, smallest class // 4))`` per class
    (``make_long_tailed``). Raw features, as stored. On small sets the
    largest training class is small too, so the smallest class bottoms out at
    one sample and the realised ratio is below the requested one
    (``imbalance_ratio`` is the request, ``realised_ratio`` what came out).
``binary:<set>``
    The twelve imbalanced binary KEEL sets; seed ``s`` (0..4) is fold ``s`` of
    ``StratifiedKFold(5, shuffle=True, random_state=0)``. Raw features.
``tune:<task>``
    The six small tasks of :data:`TUNING_TASKS` that chose the current defaults.
``perceptual:digits-canvas-exp50``
    scikit-learn's 8x8 digits (pixels / 16) pasted at a random offset in an
    11x11 canvas with Gaussian noise (sd 0.1), train and test alike, then an
    exponential long tail at imbalance 50 and 30 test images per class. The
    plain 8x8 digits are too easy for a convolutional encoder to stand out;
    the offsets make translation invariance pay. Rows of 121 pixels, read as
    ``(1, 11, 11)`` images by ``ConvEncoder``.
``perceptual:signal-exp100``, ``perceptual:signal-large-exp10``
    Generated 1-D signals (:func:`make_signals`): 10 classes, each a random
    smooth periodic template of length 128; each sample is a shifted,
    amplitude-scaled, time-sheared and time-warped copy plus noise (shifts
    cover the whole period, so only a shift-invariant encoder sees alike
    samples as alike). About 3,100 training samples at imbalance 100, and
    about 20,400 at imbalance 10, with 100 test samples per class. Read by
    :class:`SignalEncoder`.
``ucr:<set>``, ``ucr:Crop-exp100``
    Real signals: six sets of the UCR archive (Dau et al., 2019) with the
    archive's own train / test split and their natural imbalance
    (Earthquakes, DistalPhalanxTW, FiftyWords, ChlorineConcentration,
    FaceAll; FiftyWords is a natural long tail of 52 to 1 rows a class, and
    the test splits are imbalanced too: balanced accuracy weighs every class
    alike). Crop's 24 balanced classes of 300 rows become an exponential long
    tail at imbalance 100 (drawn per seed), tested on the archive's 16,800
    test rows. The seed draws the models' randomness (and Crop's tail); the
    split is fixed. Read by :class:`SignalEncoder`: the family generated
    signals stand in for, reported on its own (``real-perceptual``).
``mnist:exp100``, ``mnist:exp10``
    Real images: MNIST's 60,000 training digits made an exponential long
    tail at imbalance 100 (13,454 images) or 10 (22,154), drawn per seed
    (the head digit varies too), tested on the whole balanced test split of
    10,000. Pixels / 255 as rows of 784, read as ``(1, 28, 28)`` images by
    ``ConvEncoder`` (``real-perceptual``).

Everything is generated with vectorised NumPy and is a deterministic function
of the seed. The real sets are read from the data folder (:func:`data_dir`).
"""

import os
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import (load_breast_cancer, load_digits, load_wine,
                              make_classification)
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch
from torch import nn

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from sklearn_clmle.datasets import long_tailed_counts, make_long_tailed  # noqa: E402
from sklearn_clmle.nn import ConvEncoder  # noqa: E402

#: Bump by hand whenever a task or a method changes meaning: it is part of
#: the cache key of ``dev_suite.py``, so stale rows are never reused.
SUITE_VERSION = "1"

FAMILIES = ("long-tail", "binary", "perceptual", "real-perceptual")

#: Multi-class sets -> half. Within each family the data sets are sorted by
#: size and dealt A B B A A B B A (a snake keeps both halves alike in size);
#: both imbalance ratios of a set stay in the same half, so a set never
#: informs both the choice and its confirmation.
MULTICLASS = {"movement_libras": "A", "led7digit": "B", "vehicle": "B", "vowel": "A",
              "contraceptive": "A", "segment": "B", "optdigits": "B", "marketing": "A"}
#: Binary sets -> half: the same snake by size, then vowel0 and kr-vs-k swapped
#: so that each half gets both easy and very imbalanced sets (IR 8-86 in each).
BINARY = {"glass5": "A", "ecoli4": "B", "dermatology-6": "B", "yeast-2_vs_8": "A",
          "abalone-21_vs_8": "A", "winequality-red-8_vs_6": "B", "vowel0": "A",
          "kr-vs-k-zero_vs_eight": "B", "poker-8_vs_6": "A", "yeast3": "B",
          "kddcup-land_vs_satan": "B", "page-blocks0": "A"}
#: The small tuning tasks -> half (one of each pair of alike tasks).
TUNING = {"digits-exp50": "A", "digits-step20": "B", "breast-cancer-10": "B",
          "wine-10": "A", "synthetic-20c-exp100": "B", "synthetic-5c-linear20": "A"}
#: Perceptual tasks -> (half, encoder).
PERCEPTUAL = {"digits-canvas-exp50": ("A", "cnn2d"), "signal-exp100": ("B", "cnn1d"),
              "signal-large-exp10": ("A", "cnn1d")}

#: Real UCR signal sets -> half, dealt by training size A B B A A B (322 to
#: about 1,640 rows).
UCR = {"Earthquakes": "A", "DistalPhalanxTW": "B", "FiftyWords": "B",
       "ChlorineConcentration": "A", "FaceAll": "A", "Crop-exp100": "B"}

#: MNIST-LT at these imbalance ratios -> half: split, so that each half has real images.
MNIST = {100: "A", 10: "B"}
N_FOLDS = 5
CANVAS = 11
SIGNAL_LENGTH = 128


#: The 20 KEEL tables (0.7 MB), shipped so that the tabular tasks run from a clone.
SHIPPED_DATA = HERE / "data"


def data_dir(path=None):
    """The data folder: ``path``, else ``$CLMLE_DATA``, else the KEEL tables
    shipped in ``benchmarks/data``. The UCR and MNIST files (19 MB) are not
    shipped: point ``path`` or ``$CLMLE_DATA`` at a folder holding them and
    the KEEL tables (``benchmarks/data/README.md``)."""
    if path is None:
        path = os.environ.get("CLMLE_DATA") or SHIPPED_DATA
    return Path(path)


def data_files(name):
    """The ``.npz`` files the named task reads from the data folder (none
    for generated tasks)."""
    kind, _, rest = name.partition(":")
    if kind == "lt":
        return [rest.rsplit("-exp", 1)[0] + ".npz"]
    if kind == "binary":
        return [rest + ".npz"]
    if kind == "ucr":
        return [f"ucr_{rest.partition('-exp')[0]}.npz"]
    if kind == "mnist":
        return ["mnist.npz"]
    return []


def has_data(name, path=None):
    """Whether every file the named task reads is in the data folder."""
    return all((data_dir(path) / file).is_file() for file in data_files(name))


def _load(name, path=None):
    with np.load(data_dir(path) / f"{name}.npz") as f:
        return f["X"], f["y"]


def _finish(data, name, family, half, encoder, **meta):
    """Add metadata, cast rows to float32 and count the classes."""
    data.X_train = np.ascontiguousarray(data.X_train, dtype=np.float32)
    data.X_test = np.ascontiguousarray(data.X_test, dtype=np.float32)
    data.y_train = np.asarray(data.y_train, dtype=np.int64)
    data.y_test = np.asarray(data.y_test, dtype=np.int64)
    labels, counts = np.unique(data.y_train, return_counts=True)
    data.train_counts = dict(zip(labels.tolist(), counts.tolist()))
    data.update(name=name, family=family, half=half, encoder=encoder,
                n_train=len(data.y_train), n_test=len(data.y_test), n_classes=len(labels),
                n_features=data.X_train.shape[1],
                realised_ratio=float(counts.max() / counts.min()), **meta)
    return data


def _standardised(bunch):
    scaler = StandardScaler().fit(bunch.X_train)
    bunch.X_train = scaler.transform(bunch.X_train).astype(np.float32)
    bunch.X_test = scaler.transform(bunch.X_test).astype(np.float32)
    return bunch


# The six small tasks: name -> (loader(seed) -> (X, y), make_long_tailed keyword arguments)
_TABULAR = {
    "breast-cancer-10": (lambda seed: load_breast_cancer(return_X_y=True),
                         dict(imbalance_ratio=10, test_per_class=60)),
    "wine-10": (lambda seed: load_wine(return_X_y=True),
                dict(imbalance_ratio=10, test_per_class=15)),
    "synthetic-20c-exp100": (
        lambda seed: make_classification(n_samples=20 * 300, n_features=40, n_informative=20,
                                         n_classes=20, n_clusters_per_class=3, class_sep=1.5,
                                         random_state=seed),
        dict(imbalance_ratio=100, test_per_class=50)),
    "synthetic-5c-linear20": (
        lambda seed: make_classification(n_samples=5 * 1200, n_features=20, n_informative=10,
                                         n_classes=5, n_clusters_per_class=4, class_sep=1.0,
                                         random_state=seed),
        dict(imbalance_ratio=20, profile="linear", test_per_class=200)),
}


def tuning_task(name, seed):
    """A long-tailed train split and a balanced test split of one of
    :data:`TUNING_TASKS` (bundled or generated data only)."""
    # Digits keep pixel intensities in [0, 1] (standardising blows up the
    # nearly constant border pixels); "digits-exp50" is the demo's task.
    if name == "digits-exp50":
        X, y = load_digits(return_X_y=True)
        return make_long_tailed(X / 16.0, y, imbalance_ratio=50, random_state=seed)
    if name == "digits-step20":
        X, y = load_digits(return_X_y=True)
        return make_long_tailed(X / 16.0, y, imbalance_ratio=20, profile="step",
                                random_state=seed)
    if name not in _TABULAR:
        raise ValueError(f"Unknown task {name!r}; choose from {TUNING_TASKS}.")
    load, split = _TABULAR[name]
    X, y = load(seed)
    return _standardised(make_long_tailed(X, y, random_state=seed, **split))


#: The six small tasks that chose the first defaults (``tune:`` in the suite).
TUNING_TASKS = ["digits-exp50", "digits-step20", "breast-cancer-10", "wine-10",
         "synthetic-20c-exp100", "synthetic-5c-linear20"]


def balanced_test_size(y):
    """Balanced test size of a multi-class set: most of each class stays for training."""
    return int(min(50, max(5, np.bincount(y).min() // 4)))


def _multiclass(dataset, ratio, half):
    def build(seed, path=None):
        X, y = _load(dataset, path)
        data = make_long_tailed(X, y, imbalance_ratio=ratio, profile="exponential",
                                test_per_class=balanced_test_size(y), random_state=seed)
        return _finish(data, f"lt:{dataset}-exp{ratio}", "long-tail", half, "mlp",
                       imbalance_ratio=ratio)
    return build


def binary_folds(y):
    """The five (train, test) index pairs of every binary task."""
    return list(StratifiedKFold(N_FOLDS, shuffle=True, random_state=0).split(np.zeros(len(y)), y))


def _binary(dataset, half):
    def build(seed, path=None):
        if not 0 <= seed < N_FOLDS:
            raise ValueError(f"Binary tasks take seeds 0..{N_FOLDS - 1} (the fold); got {seed}.")
        X, y = _load(dataset, path)
        train, test = binary_folds(y)[seed]
        data = Bunch(X_train=X[train], y_train=y[train], X_test=X[test], y_test=y[test])
        return _finish(data, f"binary:{dataset}", "binary", half, "mlp", fold=seed)
    return build


def _tuning(name, half):
    def build(seed, path=None):
        return _finish(tuning_task(name, seed), f"tune:{name}", "long-tail", half, "mlp")
    return build


def make_canvas_digits(seed, canvas=CANVAS, noise=0.1):
    """All 1,797 digits at a random offset in a ``canvas`` square, plus Gaussian noise.

    Returns ``X`` of shape ``(1797, canvas * canvas)`` (float32) and ``y``.
    """
    digits = load_digits()
    images, y = digits.images / 16.0, digits.target
    n, room = len(y), canvas - 8 + 1
    rng = np.random.default_rng([seed, 2])
    rows, cols = rng.integers(room, size=n), rng.integers(room, size=n)
    out = np.zeros((n, canvas, canvas))
    # One fancy-indexed write for all images: pixel (i, j) of image k lands at
    # (rows[k] + i, cols[k] + j).
    k, i, j = np.ogrid[:n, :8, :8]
    out[k, rows[:, None, None] + i, cols[:, None, None] + j] = images
    out += noise * rng.standard_normal(out.shape)
    return out.reshape(n, -1).astype(np.float32), y


def _canvas_digits(name, half):
    def build(seed, path=None):
        X, y = make_canvas_digits(seed)
        data = make_long_tailed(X, y, imbalance_ratio=50, profile="exponential",
                                test_per_class=30, random_state=seed)
        return _finish(data, f"perceptual:{name}", "perceptual", half, "cnn2d",
                       imbalance_ratio=50, image_shape=(1, CANVAS, CANVAS))
    return build


def signal_templates(n_classes, length, rng, n_harmonics=6):
    """Random smooth periodic templates as Fourier coefficients ``(n_classes, n_harmonics)``.

    Harmonic ``k`` has amplitude ``~ N(0, 1) / k`` and a uniform phase, so the
    templates are smooth; they are normalised to unit RMS.
    """
    k = np.arange(1, n_harmonics + 1)
    amplitude = np.abs(rng.standard_normal((n_classes, n_harmonics))) / k
    amplitude /= np.sqrt((amplitude ** 2).sum(axis=1, keepdims=True) / 2)
    phase = rng.uniform(0, 2 * np.pi, (n_classes, n_harmonics))
    return amplitude, phase


def make_signals(counts, rng, *, templates, length=SIGNAL_LENGTH, max_shift=0.5,
                 scale=(0.6, 1.6), shear=(0.75, 1.33), warp=0.05, noise=0.5):
    """Samples of the 1-D signal task: ``counts[c]`` samples of class ``c``.

    Each sample reads its class template at positions
    ``center + shear * (t - center) + shift + warp`` (periodic), where the
    shift is uniform in ``+- max_shift`` of the length, the shear log-uniform
    in ``shear`` and the warp a random smooth bend (one sine period of up to
    ``warp`` of the length); then scales it by a uniform amplitude in
    ``scale`` and adds white Gaussian noise of standard deviation ``noise``
    (the template has unit RMS).
    """
    amplitude, phase = templates
    y = np.repeat(np.arange(len(counts)), counts)
    n = len(y)
    t = np.arange(length)[None, :]
    center = length / 2
    shift = rng.uniform(-max_shift, max_shift, (n, 1)) * length
    stretch = np.exp(rng.uniform(*np.log(shear), (n, 1)))
    bend = rng.uniform(-warp, warp, (n, 1)) * length
    bend_phase = rng.uniform(0, 2 * np.pi, (n, 1))
    position = (center + stretch * (t - center) + shift
                + bend * np.sin(2 * np.pi * t / length + bend_phase))
    X = np.zeros((n, length))
    for h in range(amplitude.shape[1]):  # a few harmonics: a loop of whole-array operations
        X += amplitude[y, h, None] * np.cos(2 * np.pi * (h + 1) * position / length
                                             + phase[y, h, None])
    X *= rng.uniform(*scale, (n, 1))
    X += noise * rng.standard_normal(X.shape)
    return X.astype(np.float32), y


def _signals(name, half, imbalance_ratio, n_max, stream):
    def build(seed, path=None):
        rng = np.random.default_rng([seed, stream])
        templates = signal_templates(10, SIGNAL_LENGTH, rng)
        counts = long_tailed_counts(n_max, 10, imbalance_ratio)[rng.permutation(10)]
        X_train, y_train = make_signals(counts, rng, templates=templates)
        X_test, y_test = make_signals(np.full(10, 100), rng, templates=templates)
        data = Bunch(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test)
        return _finish(data, f"perceptual:{name}", "perceptual", half, "cnn1d",
                       imbalance_ratio=imbalance_ratio, signal_length=SIGNAL_LENGTH)
    return build


def _ucr(name, half):
    dataset, _, ratio = name.partition("-exp")

    def build(seed, path=None):
        with np.load(data_dir(path) / f"ucr_{dataset}.npz") as f:
            X_train, y_train, X_test, y_test = (f[k] for k in ("X_train", "y_train",
                                                               "X_test", "y_test"))
        meta = {}
        if ratio:
            # Classes shuffled per seed, so which class is the head varies too.
            rng = np.random.default_rng([seed, 5])
            n_classes = int(y_train.max()) + 1
            counts = long_tailed_counts(np.bincount(y_train).min(), n_classes, int(ratio))
            order = rng.permutation(n_classes)
            rows = np.concatenate([
                rng.choice(np.flatnonzero(y_train == c), counts[i], replace=False)
                for i, c in enumerate(order)])
            X_train, y_train = X_train[np.sort(rows)], y_train[np.sort(rows)]
            meta["imbalance_ratio"] = int(ratio)
        data = Bunch(X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test)
        return _finish(data, f"ucr:{name}", "real-perceptual", half, "cnn1d",
                       signal_length=X_train.shape[1], **meta)
    return build


def _mnist(ratio, half):
    name = f"mnist:exp{ratio}"

    def build(seed, path=None):
        with np.load(data_dir(path) / "mnist.npz") as f:
            X_train, y_train, X_test, y_test = (f[k] for k in ("X_train", "y_train",
                                                               "X_test", "y_test"))
        # An exponential tail of the training split drawn per seed (which
        # digit is the head varies too); the whole balanced test split.
        rng = np.random.default_rng([seed, 6])
        counts = long_tailed_counts(np.bincount(y_train).min(), 10, ratio)
        rows = np.sort(np.concatenate([
            rng.choice(np.flatnonzero(y_train == c), counts[i], replace=False)
            for i, c in enumerate(rng.permutation(10))]))
        data = Bunch(X_train=X_train[rows].reshape(len(rows), -1) / 255.0,
                     y_train=y_train[rows], X_test=X_test.reshape(len(X_test), -1) / 255.0,
                     y_test=y_test)
        return _finish(data, name, "real-perceptual", half, "cnn2d", imbalance_ratio=ratio,
                       image_shape=(1, 28, 28))
    return build


def _registry():
    tasks = {}
    for dataset, half in MULTICLASS.items():
        for ratio in (10, 100):
            tasks[f"lt:{dataset}-exp{ratio}"] = _multiclass(dataset, ratio, half)
    for dataset, half in BINARY.items():
        tasks[f"binary:{dataset}"] = _binary(dataset, half)
    for name, half in TUNING.items():
        tasks[f"tune:{name}"] = _tuning(name, half)
    tasks["perceptual:digits-canvas-exp50"] = _canvas_digits("digits-canvas-exp50", "A")
    # Streams 3 and 4 keep the two signal tasks' templates apart for one seed.
    tasks["perceptual:signal-exp100"] = _signals("signal-exp100", "B", 100, 1250, 3)
    tasks["perceptual:signal-large-exp10"] = _signals("signal-large-exp10", "A", 10, 5000, 4)
    for name, half in UCR.items():
        tasks[f"ucr:{name}"] = _ucr(name, half)
    for ratio, half in MNIST.items():
        tasks[f"mnist:exp{ratio}"] = _mnist(ratio, half)
    return tasks


#: Task name -> build(seed, path=None) -> Bunch.
TASKS = _registry()


def family(name):
    """Family of a task name, without building it."""
    if name.startswith("binary:"):
        return "binary"
    if name.startswith(("ucr:", "mnist:")):
        return "real-perceptual"
    return "perceptual" if name.startswith("perceptual:") else "long-tail"


def half(name):
    """Half (``"A"`` or ``"B"``) of a task name, without building it."""
    kind, _, rest = name.partition(":")
    if kind == "lt":
        return MULTICLASS[rest.rsplit("-exp", 1)[0]]
    if kind == "binary":
        return BINARY[rest]
    if kind == "tune":
        return TUNING[rest]
    if kind == "ucr":
        return UCR[rest]
    if kind == "mnist":
        return MNIST[int(rest.removeprefix("exp"))]
    return PERCEPTUAL[rest][0]


def encoder_kind(name):
    """Encoder kind (``"mlp"``, ``"cnn2d"``, ``"cnn1d"``) of a task name, without building it."""
    kind, _, rest = name.partition(":")
    if kind == "ucr":
        return "cnn1d"
    if kind == "mnist":
        return "cnn2d"
    return PERCEPTUAL[rest][1] if kind == "perceptual" else "mlp"


def needs_data_folder(name):
    """Whether the task reads the data folder (KEEL, UCR and MNIST files)."""
    return bool(data_files(name))


def default_seeds(name, seeds=(0, 1, 2)):
    """The seeds a task runs with: the five folds for binary tasks, else ``seeds``."""
    return list(range(N_FOLDS)) if family(name) == "binary" else list(seeds)


def task(name, seed, path=None):
    """Build the named task for ``seed`` (for binary tasks: the fold)."""
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; see `dev_suite.py --list`.")
    return TASKS[name](seed, path)


class SignalEncoder(nn.Module):
    """Small 1-D CNN for signals given as rows of ``length`` samples.

    Blocks of ``Conv1d -> BatchNorm -> ReLU -> MaxPool(2)``, then global
    average pooling, dropout and a linear layer to ``embedding_dim``.

    Parameters
    ----------
    length : int
        Samples per signal (the row length).
    embedding_dim : int, default=64
    channels : tuple of int, default=(16, 32, 64)
    kernel_size : int, default=5
    dropout : float, default=0.1
    """

    def __init__(self, length, embedding_dim=64, channels=(16, 32, 64), kernel_size=5,
                 dropout=0.1):
        super().__init__()
        self.length = length
        layers, width = [], 1
        for out in channels:
            layers += [nn.Conv1d(width, out, kernel_size, padding=kernel_size // 2),
                       nn.BatchNorm1d(out), nn.ReLU(), nn.MaxPool1d(2, ceil_mode=True)]
            width = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, embedding_dim))

    def forward(self, features):
        signals = features.reshape(features.shape[0], 1, self.length)
        return self.head(self.features(signals).mean(dim=2))


def encoder_spec(data, embedding_dim=None):
    """``(module, module_params)`` of the encoder the deep methods use on ``data``.

    ``(None, {})`` for feature rows (the library's default MLP). For the
    networks trained as classifiers, pass ``embedding_dim`` (the number of
    classes) and the MLP is named explicitly.
    """
    dim = {} if embedding_dim is None else {"embedding_dim": embedding_dim}
    if data.encoder == "cnn2d":
        return ConvEncoder, {"image_shape": tuple(data.image_shape), **dim}
    if data.encoder == "cnn1d":
        return SignalEncoder, {"length": int(data.signal_length), **dim}
    if embedding_dim is None:
        return None, {}
    from sklearn_clmle.nn import MLPEncoder

    return MLPEncoder, {"in_features": data.X_train.shape[1], **dim}


__all__ = ["FAMILIES", "SUITE_VERSION", "TASKS", "SignalEncoder", "binary_folds",
           "data_dir", "default_seeds", "encoder_kind", "encoder_spec", "family", "half",
           "make_canvas_digits", "make_signals", "needs_data_folder", "task", "data_files",
           "has_data",
           "balanced_test_size"]
