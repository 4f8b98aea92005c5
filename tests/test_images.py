"""condense_jax.images: image files written here in their exact formats (MNIST IDX plain and gzip,
CIFAR-10 pickles, .npz), read back and compared, then corrupted; digits, synthetic set, subsampling."""

from __future__ import annotations

import gzip
import pickle
import re

import numpy as np
import pytest

from condense_jax.errors import ConfigError
from condense_jax.gd import images


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    """The IDX format: 4-byte big-endian magic, one big-endian uint32 per dim, the uint8 data."""
    return magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.astype(np.uint8).tobytes()


def write(path, raw: bytes, gz: bool):
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.fixture
def mnist(tmp_path):
    rng = np.random.default_rng(0)
    pics = rng.integers(0, 256, (12, 6, 5), dtype=np.uint8)  # H ≠ W catches a transposed reshape
    labels = rng.integers(0, 10, 12, dtype=np.uint8)
    return tmp_path, pics, labels


def test_idx_header_layout_is_big_endian():
    raw = idx_bytes(np.zeros((2, 3, 4), np.uint8), 0x803)
    assert raw[:4] == b"\x00\x00\x08\x03" and raw[4:16] == b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"
    assert len(raw) == 16 + 24


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_round_trip(mnist, gz):
    d, pics, labels = mnist
    sfx = ".gz" if gz else ""
    ip = write(d / f"train-images-idx3-ubyte{sfx}", idx_bytes(pics, images.IDX_IMAGES), gz)
    lp = write(d / f"train-labels-idx1-ubyte{sfx}", idx_bytes(labels, images.IDX_LABELS), gz)
    x, y = images.load_mnist_idx(ip, lp)
    assert x.shape == (12, 6, 5, 1) and x.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(x[..., 0] * 255, pics.astype(np.float64))
    np.testing.assert_array_equal(y, labels)
    for source in (d, ip):  # the directory, or the images file with its labels beside it
        x2, y2 = images.load_image_data(source)
        np.testing.assert_array_equal(x2, x)
        np.testing.assert_array_equal(y2, y)


def test_mnist_mixed_gzip_and_test_split(mnist):
    d, pics, labels = mnist
    write(d / "t10k-images-idx3-ubyte.gz", idx_bytes(pics, images.IDX_IMAGES), True)
    write(d / "t10k-labels-idx1-ubyte", idx_bytes(labels, images.IDX_LABELS), False)
    x, y = images.load_image_data(d, split="test")
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(ConfigError, match="holds neither train-images"):
        images.load_image_data(d)


@pytest.mark.parametrize("corrupt,words", [
    (lambda b: b"\x00\x00\x08\x01" + b[4:], "magic number 0x00000801, expected 0x00000803"),
    (lambda b: b[:-5], "truncated"),
    (lambda b: b + b"\x00", "too long"),
    (lambda b: b[:6], "too short for its header"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_idx_images(mnist, corrupt, words, gz):
    d, pics, labels = mnist
    ip = write(d / "bad-images-idx3-ubyte", corrupt(idx_bytes(pics, images.IDX_IMAGES)), gz)
    lp = write(d / "bad-labels-idx1-ubyte", idx_bytes(labels, images.IDX_LABELS), False)
    with pytest.raises(ConfigError, match=words) as e:
        images.load_mnist_idx(ip, lp)
    assert str(ip) in str(e.value) and "\n" not in str(e.value)


def test_corrupt_idx_labels_and_counts(mnist):
    d, pics, labels = mnist
    ip = write(d / "i", idx_bytes(pics, images.IDX_IMAGES), False)
    swapped = write(d / "l", idx_bytes(pics, images.IDX_IMAGES), False)  # an images file as labels
    with pytest.raises(ConfigError, match="IDX labels file .* magic number 0x00000803, expected 0x00000801"):
        images.load_mnist_idx(ip, swapped)
    short = write(d / "l2", idx_bytes(labels[:7], images.IDX_LABELS), True)
    with pytest.raises(ConfigError, match="hold 12 images but 7 labels"):
        images.load_mnist_idx(ip, short)
    with pytest.raises(ConfigError, match=r"'.*missing' cannot be read: no such file"):
        images.load_mnist_idx(d / "missing", short)
    (d / "broken.gz").write_bytes(b"\x1f\x8b" + b"not really gzip")
    with pytest.raises(ConfigError, match="broken gzip"):
        images.load_mnist_idx(d / "broken.gz", short)


def cifar_batch(path, n: int, seed: int, str_keys: bool = False):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    keys = ("data", "labels") if str_keys else (b"data", b"labels")
    path.write_bytes(pickle.dumps({keys[0]: data, keys[1]: labels, b"batch_label": b"x", b"filenames": [b"a"] * n}))
    return data, labels


def test_cifar_round_trip_channel_order(tmp_path):
    d1, l1 = cifar_batch(tmp_path / "data_batch_1", 4, 0)
    d2, l2 = cifar_batch(tmp_path / "data_batch_2", 3, 1, str_keys=True)
    x, y = images.load_cifar10([tmp_path / "data_batch_1", tmp_path / "data_batch_2"])
    assert x.shape == (7, 32, 32, 3) and x.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(y, l1 + l2)
    raw = np.concatenate([d1, d2])
    # each row: 1024 red, 1024 green, 1024 blue values, each plane 32×32 row-major
    for i, r, c, ch in ((5, 0, 0, 0), (5, 0, 0, 1), (2, 2, 5, 2), (6, 31, 30, 1)):
        assert x[i, r, c, ch] * 255 == raw[i, 1024 * ch + 32 * r + c]
    x2, y2 = images.load_image_data(tmp_path)  # directory of data_batch_*
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    x3, _ = images.load_image_data(tmp_path / "data_batch_2")
    np.testing.assert_array_equal(x3, x[4:])


@pytest.mark.parametrize("content,words", [
    (b"definitely not a pickle", "not a python pickle"),
    (pickle.dumps({b"labels": [1]}), "lacks the b'data' and b'labels'"),
    (pickle.dumps([1, 2]), "lacks the b'data' and b'labels'"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), r"data \(2, 100\).*expected \(N, 3072\)"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), r"labels \(1,\); expected"),
    (pickle.dumps({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}), "N ≥ 1"),
    (pickle.dumps({b"data": np.zeros((1, 3072)), b"labels": [0]}), "dtype float64, expected uint8"),
])
def test_corrupt_cifar(tmp_path, content, words):
    (tmp_path / "data_batch_1").write_bytes(content)
    with pytest.raises(ConfigError, match=words) as e:
        images.load_cifar10(tmp_path / "data_batch_1")
    assert "data_batch_1" in str(e.value) and "\n" not in str(e.value)


def test_cifar_missing_file_and_empty_list(tmp_path):
    with pytest.raises(ConfigError, match="data_batch_9' cannot be read: no such file"):
        images.load_cifar10([tmp_path / "data_batch_9"])
    with pytest.raises(ConfigError, match="no CIFAR-10 batch"):
        images.load_cifar10([])


def test_npz_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    x3, x4 = rng.random((6, 5, 4)), rng.random((6, 5, 4, 2))
    np.savez(tmp_path / "a.npz", x=x3, y=np.arange(6))
    np.savez(tmp_path / "b.npz", x=x4, y=np.arange(6.0))
    x, y = images.load_images_npz(tmp_path / "a.npz")
    np.testing.assert_array_equal(x[..., 0], x3)
    assert x.shape == (6, 5, 4, 1) and y.dtype == np.int64
    x, y = images.load_image_data(tmp_path / "b.npz")
    np.testing.assert_array_equal(x, x4)
    np.testing.assert_array_equal(y, np.arange(6))
    for name, arrays, words in (
        ("keys.npz", dict(x=x3), "lacks array(s) ['y']"),
        ("n.npz", dict(x=x3, y=np.arange(5)), "6 images but y has 5"),
        ("nan.npz", dict(x=np.full((2, 5, 5), np.nan), y=np.arange(2)), "non-finite"),
        ("inf.npz", dict(x=np.ones((2, 5, 5)), y=np.array([0, np.inf])), "non-finite"),
        ("dim.npz", dict(x=rng.random((6, 5)), y=np.arange(6)), "x (n, H, W[, C])"),
        ("dim5.npz", dict(x=rng.random((2, 2, 2, 2, 2)), y=np.arange(2)), "x (n, H, W[, C])"),
        ("empty.npz", dict(x=np.zeros((0, 5, 5)), y=np.zeros(0)), "n = 0 images"),
        ("frac.npz", dict(x=x3, y=np.linspace(0, 1, 6)), "non-integer labels"),
    ):
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ConfigError, match=re.escape(words)) as e:
            images.load_images_npz(tmp_path / name)
        assert name in str(e.value)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not a readable .npz"):
        images.load_images_npz(tmp_path / "junk.npz")


def test_dispatch_errors(tmp_path):
    with pytest.raises(ConfigError, match="neither 'digits' nor 'synthetic'"):
        images.load_image_data("mnist-please")
    with pytest.raises(ConfigError, match="holds neither"):
        images.load_image_data(tmp_path)
    (tmp_path / "pic.png").write_bytes(b"\x89PNG")
    with pytest.raises(ConfigError, match="is not an .npz"):
        images.load_image_data(tmp_path / "pic.png")
    (tmp_path / "x-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(ConfigError, match="no x-labels-idx1-ubyte"):
        images.load_image_data(tmp_path / "x-images-idx3-ubyte")
    with pytest.raises(ConfigError, match="split"):
        images.load_image_data(tmp_path, split="val")
    with pytest.raises(ConfigError, match="only to the synthetic"):
        images.load_image_data("digits", classes=3)


def test_digits():
    x, y = images.load_digits()
    assert x.shape == (1797, 8, 8, 1) and x.dtype == np.float64 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0  # sklearn's pixels are 0…16
    assert set(y.tolist()) == set(range(10))
    xs, ys = images.load_image_data("digits", n=500, seed=1)
    assert xs.shape == (500, 8, 8, 1)


def test_synthetic_deterministic_per_seed():
    a = images.synthetic_images(40, size=7, channels=3, classes=3, seed=5)
    b = images.load_image_data("synthetic", n=40, seed=5, size=7, channels=3, classes=3)
    c = images.synthetic_images(40, size=7, channels=3, classes=3, seed=6)
    assert a[0].shape == (40, 7, 7, 3) and a[1].dtype == np.int64
    assert a[0].min() >= 0 and a[0].max() <= 1 and set(a[1].tolist()) <= {0, 1, 2}
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_subsample():
    x = np.arange(50.0)[:, None, None, None] * np.ones((1, 2, 2, 1))
    y = np.arange(50)
    xa, ya = images.subsample(x, y, 20, seed=3)
    xb, yb = images.subsample(x, y, 20, seed=3)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert len(set(ya.tolist())) == 20 and np.all(np.diff(ya) > 0)  # distinct, original order
    np.testing.assert_array_equal(xa[:, 0, 0, 0], ya)  # images stay with their labels
    assert not np.array_equal(ya, images.subsample(x, y, 20, seed=4)[1])
    np.testing.assert_array_equal(images.subsample(x, y, 50, seed=0)[1], y)
    for bad in (0, -1, 51, 2.5, True):
        with pytest.raises(ConfigError, match="n must be an integer from 1 to the 50 images"):
            images.subsample(x, y, bad, seed=0)


def test_targets():
    y = np.array([3, 0, 2])
    r = images.regression_targets(y)
    assert r.dtype == np.float64 and r.tolist() == [3.0, 0.0, 2.0]
    oh = images.one_hot(y)
    assert oh.shape == (3, 4) and oh.dtype == np.float64
    np.testing.assert_array_equal(oh.argmax(1), y)
    np.testing.assert_array_equal(oh.sum(1), 1.0)
    assert images.one_hot(y, 10).shape == (3, 10)
    with pytest.raises(ConfigError, match="does not fit k = 3"):
        images.one_hot(y, 3)
    with pytest.raises(ConfigError, match="non-negative integers"):
        images.one_hot(np.array([-1, 0]))
    with pytest.raises(ConfigError, match="non-negative integers"):
        images.one_hot(np.array([0.5]))
    with pytest.raises(ConfigError, match="shape"):
        images.regression_targets(np.zeros((2, 2)))
    with pytest.raises(ConfigError, match="non-finite"):
        images.regression_targets(np.array([np.nan]))


@pytest.mark.slow
def test_no_jax_import():
    import subprocess
    import sys

    code = "import sys, condense_jax.gd.images; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
