"""Multi-view classification data: one view per sensing node.

Every dataset is a :class:`Views`: the same ``m`` samples seen through
``n_views`` partial observations (one per non-root node of the network) and one
label, split into a training and a held-out set.

- :func:`synthetic_views` (the default): a Gaussian-mixture classification in
  which view ``v`` of a sample of class ``y`` is ``mu[y, v] + sigma_v * noise``,
  so that no view alone decides the class but their fusion does.
- :func:`digits_views`: scikit-learn's bundled 8x8 digits, cut into horizontal
  strips of pixels.
- :func:`fashion_mnist_views`: the 28x28 Fashion-MNIST idx files (Debian's
  ``dataset-fashion-mnist`` package), cut the same way.
"""

from __future__ import annotations

import gzip
import inspect
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from estimators._validation import positive_float, positive_int, probability
from inl._validation import positive_range

__all__ = [
    "Views",
    "synthetic_views",
    "digits_views",
    "fashion_mnist_views",
    "make_views",
    "DATASETS",
    "FASHION_MNIST_DIR",
]

#: Where Debian's ``dataset-fashion-mnist`` package installs the idx files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class Views:
    """A multi-view classification dataset, split into train and held-out parts.

    Attributes
    ----------
    train_views, test_views : tuple of numpy.ndarray
        ``n_views`` float32 arrays of shapes ``(n_train, d_v)`` / ``(n_test, d_v)``.
    train_labels, test_labels : numpy.ndarray
        int64 class labels in ``0 .. n_classes - 1``.
    n_classes : int
    name : str
    """

    train_views: tuple[np.ndarray, ...]
    train_labels: np.ndarray
    test_views: tuple[np.ndarray, ...]
    test_labels: np.ndarray
    n_classes: int
    name: str

    @property
    def n_views(self) -> int:
        """Number of views (one per non-root node)."""
        return len(self.train_views)

    @property
    def view_dims(self) -> tuple[int, ...]:
        """Width ``d_v`` of each view."""
        return tuple(int(v.shape[1]) for v in self.train_views)

    @property
    def n_train(self) -> int:
        """Training-set size ``m``."""
        return int(self.train_labels.shape[0])

    @property
    def n_test(self) -> int:
        """Held-out-set size."""
        return int(self.test_labels.shape[0])


def _split_columns(x: np.ndarray, n_views: int, name: str) -> tuple[np.ndarray, ...]:
    """Cut row-major pixel columns into ``n_views`` contiguous strips."""
    if n_views > x.shape[1]:
        raise ValueError(f"n_views={n_views} exceeds the {x.shape[1]} features of {name}")
    return tuple(
        np.ascontiguousarray(x[:, idx], dtype=np.float32)
        for idx in np.array_split(np.arange(x.shape[1]), n_views)
    )


def _from_arrays(x, y, n_views, *, n_test, rng, name, n_classes) -> Views:
    """Shuffle, split off ``n_test`` held-out samples and cut into views."""
    order = rng.permutation(x.shape[0])
    x, y = x[order], y[order]
    views = _split_columns(x, n_views, name)
    return Views(
        train_views=tuple(v[n_test:] for v in views),
        train_labels=y[n_test:].astype(np.int64),
        test_views=tuple(v[:n_test] for v in views),
        test_labels=y[:n_test].astype(np.int64),
        n_classes=n_classes,
        name=name,
    )


def synthetic_views(
    n_views: int,
    *,
    n_classes: int = 4,
    view_dim: int = 4,
    n_train: int = 2000,
    n_test: int = 1000,
    separation: float = 1.0,
    noise_range: tuple[float, float] = (1.0, 3.0),
    seed: int | None = None,
    sample_seed: int | None = None,
) -> Views:
    """A multi-view Gaussian-mixture classification task.

    Class ``y`` is uniform on ``n_classes``; view ``v`` of a sample is

    .. math::

        x_v = \\mu_{y, v} + \\sigma_v \\varepsilon_v, \\qquad
        \\mu_{y, v} \\sim \\mathcal N(0, s^2 I_d), \\quad
        \\varepsilon_v \\sim \\mathcal N(0, I_d),

    with ``s = separation`` and per-view noise levels ``sigma_v`` evenly spaced
    over ``noise_range`` (then shuffled), so views differ in quality and the
    Bayes error falls as views are fused. Everything is drawn from one numpy
    generator seeded by ``seed``.

    Parameters
    ----------
    n_views : int
        Number of views (one per non-root node).
    n_classes : int
        Classes, >= 2 (chance accuracy ``1 / n_classes``).
    view_dim : int
        Width ``d`` of every view.
    n_train, n_test : int
        Sizes of the training and held-out sets.
    separation : float
        ``s``, the spread of the class means (> 0); larger is easier.
    noise_range : (float, float)
        ``(low, high)`` of the per-view noise levels, ``0 < low <= high``.
    seed : int or None
        Seed of the numpy generator: the task (class means, noise levels) and,
        unless ``sample_seed`` is given, the samples.
    sample_seed : int or None
        Seed of the samples and their split alone, the task staying that of
        ``seed``: different ``sample_seed`` give independent draws from one
        distribution (supersample runs need that).

    Returns
    -------
    Views
        ``n_views`` views of width ``view_dim``.

    Examples
    --------
    >>> v = synthetic_views(3, n_train=10, n_test=5, seed=0)
    >>> v.view_dims, v.n_train, v.n_test
    ((4, 4, 4), 10, 5)
    """
    n_views = positive_int(n_views, "n_views")
    n_classes = positive_int(n_classes, "n_classes", minimum=2)
    view_dim = positive_int(view_dim, "view_dim")
    n_train = positive_int(n_train, "n_train")
    n_test = positive_int(n_test, "n_test")
    separation = positive_float(separation, "separation")
    low, high = positive_range(noise_range, "noise_range")
    rng = np.random.default_rng(seed)
    means = separation * rng.standard_normal((n_classes, n_views, view_dim))
    sigmas = rng.permutation(np.linspace(low, high, n_views))
    if sample_seed is not None:
        rng = np.random.default_rng(positive_int(sample_seed, "sample_seed", minimum=0))
    m = n_train + n_test
    y = rng.integers(0, n_classes, size=m)
    x = means[y] + sigmas[None, :, None] * rng.standard_normal((m, n_views, view_dim))
    return _from_arrays(
        x.reshape(m, n_views * view_dim), y, n_views,
        n_test=n_test, rng=rng, name="synthetic", n_classes=n_classes,
    )


def digits_views(
    n_views: int, *, test_fraction: float = 0.3, seed: int | None = None
) -> Views:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes) cut into strips.

    Pixels (scaled to ``[0, 1]``) are taken in row-major order and cut into
    ``n_views`` contiguous groups of near-equal size: horizontal strips of the
    image. The shuffle and split are drawn with ``seed``.

    Parameters
    ----------
    n_views : int
        Number of strips, 1 to 64.
    test_fraction : float
        Share of the 1797 images held out, in ``(0, 1)``.
    seed : int or None
        Seed of the shuffle.

    Returns
    -------
    Views
    """
    from sklearn.datasets import load_digits

    n_views = positive_int(n_views, "n_views")
    test_fraction = probability(test_fraction, "test_fraction", open_interval=True)
    x, y = load_digits(return_X_y=True)
    n_test = max(1, int(round(test_fraction * x.shape[0])))
    return _from_arrays(
        x / 16.0, y, n_views, n_test=n_test, rng=np.random.default_rng(seed),
        name="digits", n_classes=10,
    )


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one idx file (LeCun's MNIST format), gzipped or not.

    The header is two zero bytes, a type code, the number of dimensions and one
    big-endian uint32 per dimension; the data follow in C order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated (header)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(shape)) if shape else 1
    if len(raw) != header + count * dtype.itemsize:
        raise ValueError(
            f"{path} holds {len(raw) - header} data bytes, its header announces "
            f"{count * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise ValueError(f"path: {directory} has no {stem} or {stem}.gz")


def fashion_mnist_views(
    path: str | os.PathLike = FASHION_MNIST_DIR,
    *,
    n_views: int,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int | None = None,
) -> Views:
    """Fashion-MNIST (28x28 greyscale, 10 classes) from its idx files, cut into strips.

    ``path`` is a directory holding ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each possibly ``.gz``), as Debian's
    ``dataset-fashion-mnist`` installs them in :data:`FASHION_MNIST_DIR`
    (``/usr/share/datasets/fashion-mnist``). Pixels are scaled to ``[0, 1]`` and cut in
    row-major order into ``n_views`` horizontal strips. ``n_train`` / ``n_test``
    keep a random subset (drawn with ``seed``) of the official splits.

    Parameters
    ----------
    path : str or os.PathLike
        The directory of the four idx files.
    n_views : int
        Number of strips, 1 to 784.
    n_train, n_test : int or None
        Subset sizes (``None`` keeps the whole official split: 60000 / 10000).
    seed : int or None
        Seed of the subsets.

    Returns
    -------
    Views

    Raises
    ------
    ValueError
        Naming ``path`` when the directory or a file is missing or malformed.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise ValueError(f"path: {directory} is not a directory (install dataset-fashion-mnist?)")
    n_views = positive_int(n_views, "n_views")
    rng = np.random.default_rng(seed)
    parts = {}
    for split, stem, limit in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = read_idx(_find_idx(directory, f"{stem}-images-idx3-ubyte"))
        labels = read_idx(_find_idx(directory, f"{stem}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"path: {stem} images {images.shape} and labels {labels.shape} do not match"
            )
        keep = np.arange(labels.shape[0])
        if limit is not None:
            limit = positive_int(limit, f"n_{split}")
            keep = np.sort(rng.permutation(keep)[: min(limit, keep.size)])
        flat = images[keep].reshape(keep.size, -1).astype(np.float32) / 255.0
        parts[split] = (_split_columns(flat, n_views, "fashion-mnist"), labels[keep].astype(np.int64))
    return Views(
        train_views=parts["train"][0], train_labels=parts["train"][1],
        test_views=parts["test"][0], test_labels=parts["test"][1],
        n_classes=10, name="fashion-mnist",
    )


#: Dataset names accepted by :func:`make_views` (and ``INLConfig.dataset``).
DATASETS = ("synthetic", "digits", "fashion-mnist")


def make_views(name: str, n_views: int, *, seed: int | None, params=None) -> Views:
    """The dataset ``name`` with ``n_views`` views, ``params`` its keyword options.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    n_views : int
        Views to cut (one per non-root node).
    seed : int or None
        The dataset's seed unless ``params`` sets its own ``seed``.
    params : dict, optional
        Keyword options of the builder (:func:`synthetic_views`,
        :func:`digits_views`, :func:`fashion_mnist_views`); unknown ones raise
        ``ValueError`` naming them.

    Returns
    -------
    Views
    """
    builders = {"synthetic": synthetic_views, "digits": digits_views, "fashion-mnist": fashion_mnist_views}
    if name not in builders:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    params = {"seed": seed, **(params or {})}
    if "n_views" in params:
        raise ValueError(f"dataset_params for {name!r} must not set n_views (one view per non-root node)")
    builder = builders[name]
    try:
        inspect.signature(builder).bind(n_views=n_views, **params)
    except TypeError as exc:
        raise ValueError(f"dataset_params for {name!r}: {exc}") from None
    return builder(n_views=n_views, **params)
