"""Multi-view datasets: shapes, seeds, idx parsing on tiny files written here."""

import gzip
import struct

import numpy as np
import pytest

from inl.data import digits_views, fashion_mnist_views, make_views, read_idx, synthetic_views


def test_synthetic_views_shapes_and_labels():
    v = synthetic_views(5, n_classes=3, view_dim=2, n_train=50, n_test=20, seed=1)
    assert v.n_views == 5 and v.view_dims == (2,) * 5
    assert v.n_train == 50 and v.n_test == 20
    assert all(x.dtype == np.float32 and x.shape == (50, 2) for x in v.train_views)
    assert set(np.unique(v.train_labels)) <= {0, 1, 2}
    assert v.train_labels.dtype == np.int64


def test_synthetic_views_depend_only_on_seed():
    a, b, c = (synthetic_views(3, n_train=30, n_test=10, seed=s) for s in (4, 4, 5))
    assert all(np.array_equal(x, y) for x, y in zip(a.train_views, b.train_views))
    assert not np.array_equal(a.train_views[0], c.train_views[0])


def test_synthetic_views_have_different_noise_levels():
    # within-class spread of each view follows its noise level in noise_range
    v = synthetic_views(4, n_classes=2, view_dim=3, n_train=4000, n_test=10, noise_range=(0.5, 2.0), seed=0)
    spreads = []
    for x in v.train_views:
        resid = np.concatenate([x[v.train_labels == k] - x[v.train_labels == k].mean(0) for k in (0, 1)])
        spreads.append(resid.std())
    assert np.allclose(sorted(spreads), [0.5, 1.0, 1.5, 2.0], rtol=0.05)


def test_digits_views_are_strips_of_the_image():
    v = digits_views(6, test_fraction=0.25, seed=0)
    assert sum(v.view_dims) == 64 and max(v.view_dims) - min(v.view_dims) <= 1
    assert v.n_train + v.n_test == 1797 and v.n_classes == 10
    assert 0.0 <= min(x.min() for x in v.train_views) and max(x.max() for x in v.train_views) <= 1.0
    with pytest.raises(ValueError, match="n_views=65 exceeds"):
        digits_views(65)


def _write_idx(path, array, *, compress):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_reads_idx_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (7, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(7) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
        "t10k-labels-idx1-ubyte": [9, 0, 4],
    }
    for name, arr in files.items():
        _write_idx(tmp_path / name, arr, compress=compress)
    v = fashion_mnist_views(tmp_path, n_views=4)
    assert v.n_train == 7 and v.n_test == 3 and v.view_dims == (196,) * 4
    assert v.test_labels.tolist() == [9, 0, 4]
    image = np.concatenate([x[0] for x in v.train_views]) * 255.0
    assert np.allclose(image, np.asarray(files["train-images-idx3-ubyte"][0]).ravel())
    sub = fashion_mnist_views(tmp_path, n_views=2, n_train=5, n_test=2, seed=0)
    assert sub.n_train == 5 and sub.n_test == 2


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="header announces 10"):
        read_idx(short)
    with pytest.raises(ValueError, match="not a directory"):
        fashion_mnist_views(tmp_path / "missing", n_views=2)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        fashion_mnist_views(tmp_path, n_views=2)


def test_make_views_dispatch_and_errors():
    v = make_views("synthetic", 3, seed=0, params={"n_train": 20, "n_test": 5})
    assert v.n_views == 3 and v.n_train == 20
    with pytest.raises(ValueError, match="dataset must be one of"):
        make_views("cifar", 3, seed=0)
    with pytest.raises(ValueError, match="dataset_params for 'synthetic'.*bogus"):
        make_views("synthetic", 3, seed=0, params={"bogus": 1})
    with pytest.raises(ValueError, match="must not set n_views"):
        make_views("digits", 3, seed=0, params={"n_views": 2})
    # the builder's own errors come through as they are, naming the argument
    with pytest.raises(ValueError, match="noise_range"):
        make_views("synthetic", 3, seed=0, params={"noise_range": [3.0, 1.0]})
    # params may set their own seed
    a = make_views("synthetic", 2, seed=0, params={"n_train": 10, "n_test": 5, "seed": 7})
    b = synthetic_views(2, n_train=10, n_test=5, seed=7)
    assert np.array_equal(a.train_views[1], b.train_views[1])


def test_synthetic_views_errors():
    for bad in (2.0, (1.0,), (2.0, 1.0), (0.0, 1.0)):
        with pytest.raises(ValueError, match="noise_range"):
            synthetic_views(2, noise_range=bad)
    with pytest.raises(ValueError, match="n_classes"):
        synthetic_views(2, n_classes=1)
