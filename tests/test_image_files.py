"""Image files the user has: MNIST IDX (plain and gzip) and CIFAR-10 pickles, written here in the
exact formats, read back, and corrupted."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pandas as pd
import pytest

from condense_jax.cli import main
from condense_jax.errors import ConfigError
from condense_jax.gd import images as image_files


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.astype(np.uint8).tobytes()


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 7, 7), dtype=np.uint8)
    labels = rng.integers(0, 10, 30, dtype=np.uint8)
    d = tmp_path / "mnist"
    d.mkdir()
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images, 0x803)))
    (d / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels, 0x801))
    return d, images, labels


def test_mnist_idx_round_trip(mnist_dir):
    d, images, labels = mnist_dir
    x, y = image_files.load_image_dir(d)
    assert x.shape == (30, 7, 7, 1) and y.dtype == np.int64
    np.testing.assert_array_equal(np.round(x[..., 0] * 255).astype(np.uint8), images)
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(image_files.read_idx(d / "train-labels-idx1-ubyte", image_files.IDX_LABELS), labels)


@pytest.mark.parametrize("corrupt,words", [
    (lambda b: b"\x00\x00\x08\x04" + b[4:], "magic number"),
    (lambda b: b[:-5], "data bytes"),
    (lambda b: b[:6], "too short"),
])
def test_corrupt_idx(mnist_dir, corrupt, words):
    d, images, _ = mnist_dir
    bad = d / "bad-idx3-ubyte"
    bad.write_bytes(corrupt(idx_bytes(images, 0x803)))
    with pytest.raises(ConfigError, match=words):
        image_files.read_idx(bad, image_files.IDX_IMAGES)
    (d / "broken.gz").write_bytes(b"\x1f\x8b" + b"not really gzip")
    with pytest.raises(ConfigError, match="broken gzip"):
        image_files.read_idx(d / "broken.gz", image_files.IDX_IMAGES)


def test_idx_count_mismatch(tmp_path, mnist_dir):
    d, images, labels = mnist_dir
    (d / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels[:20], 0x801))
    with pytest.raises(ConfigError, match="30 images but 20 labels"):
        image_files.load_image_dir(d)


def cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    path.write_bytes(pickle.dumps({b"data": data, b"labels": labels, b"batch_label": b"test"}))
    return data, labels


def test_cifar_round_trip_and_channel_order(tmp_path):
    d = tmp_path / "cifar"
    d.mkdir()
    d1, l1 = cifar_batch(d / "data_batch_1", 4, 0)
    d2, l2 = cifar_batch(d / "data_batch_2", 3, 1)
    x, y = image_files.load_image_dir(d)
    assert x.shape == (7, 32, 32, 3)
    np.testing.assert_array_equal(y, l1 + l2)
    # row layout: 1024 red, then 1024 green, then 1024 blue values, each 32×32 row-major
    img, raw = x[5], d2[1]
    assert round(img[0, 0, 0] * 255) == raw[0] and round(img[0, 0, 1] * 255) == raw[1024]
    assert round(img[2, 5, 2] * 255) == raw[2048 + 2 * 32 + 5]


@pytest.mark.parametrize("content,words", [
    (b"definitely not a pickle", "not a python pickle"),
    (pickle.dumps({b"labels": [1]}), "lacks"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "expected"),
])
def test_corrupt_cifar(tmp_path, content, words):
    (tmp_path / "data_batch_1").write_bytes(content)
    with pytest.raises(ConfigError, match=words):
        image_files.load_cifar10(tmp_path / "data_batch_1")


def test_missing_and_empty_dirs(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        image_files.load_image_dir(tmp_path / "nope")
    with pytest.raises(ConfigError, match="neither"):
        image_files.load_image_dir(tmp_path)
    with pytest.raises(ConfigError, match="cannot be read"):
        image_files.load_mnist_idx(tmp_path / "a", tmp_path / "b")


def test_cnn_sweep_on_an_idx_directory(mnist_dir, tmp_path, capsys):
    d, _, _ = mnist_dir
    out = tmp_path / "run"
    assert main(["train", "--model", "cnn", "--data", str(d), "--n", "20", "--widths", "4", "--steps", "5",
                 "--seeds", "1", "--no-predict", "--quiet", "--no-figure", "--out", str(out)]) == 0
    runs = pd.read_parquet(out / "runs")
    assert len(runs) == 1 and runs["n"].iloc[0] == 20
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "data_batch_1").write_bytes(b"junk")
    assert main(["train", "--model", "cnn", "--data", str(bad), "--n", "2", "--steps", "2", "--quiet",
                 "--out", str(tmp_path / "x")]) == 2
    assert "not a python pickle" in capsys.readouterr().err


def test_images_npz(tmp_path):
    from condense_jax.gd import data

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ok.npz", x=rng.random((6, 5, 5)), y=np.arange(6))
    x, y = data.load_images(tmp_path / "ok.npz")
    assert x.shape == (6, 5, 5, 1) and list(y) == list(range(6))
    for name, arrays, words in (
        ("n.npz", dict(x=rng.random((6, 5, 5)), y=np.arange(5)), "6 images but y has 5"),
        ("nan.npz", dict(x=np.full((2, 5, 5), np.nan), y=np.arange(2)), "non-finite"),
        ("dim.npz", dict(x=rng.random((6, 5)), y=np.arange(6)), "x (n, H, W[, C])"),
        ("empty.npz", dict(x=np.zeros((0, 5, 5)), y=np.zeros(0)), "n = 0 images"),
    ):
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            data.load_images(tmp_path / name)


def test_synthetic_images_are_seeded_and_class_dependent():
    from condense_jax.gd import data

    x, y = data.synthetic_images(200, size=8, classes=4, seed=3)
    x2, y2 = data.synthetic_images(200, size=8, classes=4, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (200, 8, 8, 1) and x.min() >= 0 and x.max() <= 1 and set(y) == {0, 1, 2, 3}
    # class means differ far more than the noise: each class is its own bar
    means = np.stack([x[y == k].mean(0) for k in range(4)])
    assert min(np.abs(means[i] - means[j]).max() for i in range(4) for j in range(i)) > 0.3
    assert not np.array_equal(x, data.synthetic_images(200, size=8, classes=4, seed=4)[0])
