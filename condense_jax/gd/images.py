"""Image data sets for the CNNs (issue #5): the bundled 8×8 digits, a seeded synthetic set, and the
user's own files — MNIST IDX (gzip or not), CIFAR-10 python-pickle batches, any images .npz.

No download is possible on these machines, so users point the CNN sweeps at the copies they have.
Every reader checks the exact format it expects and raises `ConfigError` with one line naming the
file and the problem. Images come back as float64 (n, H, W, C), channels last, uint8 sources scaled
to [0, 1]; labels as int64 (n,). Pure NumPy (scikit-learn only for the bundled digits), no JAX.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from pathlib import Path

import numpy as np

from ..engine.datafiles import check_real_finite, load_digits, subsample
from ..errors import ConfigError
from . import data as _data

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # magic: 0x08 = unsigned bytes, then 3 / 1 dims
SOURCES = ("digits", "synthetic")

synthetic_images = _data.synthetic_images  # one seeded generator for the whole package (see data.py)




# ---------------------------------------------------------------------------
# The user's files


def _read_bytes(path, what: str) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic; ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} cannot be read: " + ("it is a directory" if path.is_dir() else "no such file"))
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ConfigError(f"{what} {str(path)!r} is a broken gzip file ({type(e).__name__})") from None
    return raw


def read_idx(path, magic: int) -> np.ndarray:
    """One IDX file as uint8 of its header's shape: a 4-byte big-endian magic (0x00000803 images,
    0x00000801 labels; the last byte is the number of dims), one big-endian uint32 per dim, then
    exactly prod(dims) bytes."""
    what = "IDX images file" if magic == IDX_IMAGES else "IDX labels file"
    raw = _read_bytes(path, what)
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim:
        raise ConfigError(f"{what} {str(path)!r} is too short for its header ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ConfigError(f"{what} {str(path)!r} has magic number {found:#010x}, expected {magic:#010x}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    need = int(np.prod(dims, dtype=np.int64))
    payload = raw[4 + 4 * ndim:]
    if len(payload) != need:
        kind = "truncated" if len(payload) < need else "too long"
        raise ConfigError(f"{what} {str(path)!r} is {kind}: it holds {len(payload)} data bytes; its header {dims} needs {need}")
    return np.frombuffer(payload, np.uint8).reshape(dims)


def load_mnist_idx(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """An MNIST IDX pair (idx3-ubyte images (n, H, W), idx1-ubyte labels (n,)), each gzipped or not
    → x (n, H, W, 1) = pixel / 255, y int64."""
    x = read_idx(images_path, IDX_IMAGES)
    y = read_idx(labels_path, IDX_LABELS)
    if len(x) != len(y):
        raise ConfigError(f"IDX files {str(images_path)!r} and {str(labels_path)!r} hold {len(x)} images but {len(y)} labels")
    if len(x) == 0:
        raise ConfigError(f"IDX images file {str(images_path)!r} holds no image")
    return x[..., None].astype(np.float64) / 255.0, y.astype(np.int64)


def _entry(batch: dict, key: str):
    return batch[key.encode()] if key.encode() in batch else batch.get(key)


def load_cifar10(paths) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 python batches, concatenated in the order given: each a pickled dict with b"data"
    (N, 3072) uint8, every row the 1024 red, 1024 green, 1024 blue values of a 32×32 image in
    row-major order, and b"labels" (N ints) → x (n, 32, 32, 3) = value / 255, y int64.

    Unpickling can run code stored in the file: read only batches you trust (your own copy of the
    data set). Batches are read with `encoding="bytes"`, as the python-2 pickles need; str keys
    ("data", "labels") of re-pickled copies are accepted too.
    """
    xs, ys = [], []
    for path in [paths] if isinstance(paths, (str, Path)) else list(paths):
        name = f"CIFAR-10 batch {str(path)!r}"
        raw = _read_bytes(path, "CIFAR-10 batch")
        try:
            batch = pickle.loads(raw, encoding="bytes")
        except Exception as e:  # any unpickling failure means a bad file
            raise ConfigError(f"{name} is not a python pickle ({type(e).__name__})") from None
        if not isinstance(batch, dict) or _entry(batch, "data") is None or _entry(batch, "labels") is None:
            has = sorted(map(repr, batch)) if isinstance(batch, dict) else type(batch).__name__
            raise ConfigError(f"{name} lacks the b'data' and b'labels' entries; it has {has}")
        try:
            data, labels = np.asarray(_entry(batch, "data")), np.asarray(_entry(batch, "labels"))
        except (TypeError, ValueError):
            raise ConfigError(f"{name} has b'data' or b'labels' that are not arrays") from None
        if data.ndim != 2 or data.shape[1] != 3072 or labels.ndim != 1 or len(labels) != len(data) or len(data) == 0:
            raise ConfigError(f"{name} has data {data.shape} and labels {labels.shape}; expected (N, 3072) and (N,) with N ≥ 1")
        if data.dtype != np.uint8:
            raise ConfigError(f"{name} has data of dtype {data.dtype}, expected uint8")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ConfigError(f"{name} has labels of dtype {labels.dtype}, expected integers")
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(labels)
    if not xs:
        raise ConfigError("no CIFAR-10 batch file given")
    return np.concatenate(xs).astype(np.float64) / 255.0, np.concatenate(ys).astype(np.int64)


def load_images_npz(path) -> tuple[np.ndarray, np.ndarray]:
    """Images from an .npz with `x` (n, H, W) or (n, H, W, C) and integer labels `y` (n,); a 3-D x
    gets C = 1. Values are used as stored (scale them beforehand). n ≥ 1, all finite."""
    x, y = _data.load_images(path)
    if not np.all(y == np.round(y)):  # finite: checked by load_images
        raise ConfigError(f"image file {str(path)!r} array y holds non-integer labels; give class labels (n,)")
    return x, y.astype(np.int64)


def _idx_pair(images: Path) -> tuple[Path, Path] | None:
    """The labels file next to an idx3 images file (…images-idx3-ubyte[.gz] → …labels-idx1-ubyte[.gz])."""
    stem = images.name.removesuffix(".gz")
    if not stem.endswith("images-idx3-ubyte"):
        return None
    base = stem.removesuffix("images-idx3-ubyte") + "labels-idx1-ubyte"
    labels = next((p for p in (images.parent / base, images.parent / f"{base}.gz") if p.is_file()), None)
    if labels is None:
        raise ConfigError(f"IDX images file {str(images)!r} has no {base}[.gz] beside it")
    return images, labels


def load_image_dir(path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """A directory with an MNIST IDX pair ({train,t10k}-images-idx3-ubyte[.gz] and the matching
    -labels-idx1-ubyte[.gz]) or CIFAR-10 batches (data_batch_* for 'train', test_batch for 'test')."""
    path = Path(path)
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    if not path.is_dir():
        raise ConfigError(f"image directory {str(path)!r} does not exist")
    prefix = "train" if split == "train" else "t10k"
    find = lambda stem: next((p for p in (path / stem, path / f"{stem}.gz") if p.is_file()), None)
    images, labels = find(f"{prefix}-images-idx3-ubyte"), find(f"{prefix}-labels-idx1-ubyte")
    if images and labels:
        return load_mnist_idx(images, labels)
    batches = sorted(path.glob("data_batch_*")) if split == "train" else sorted(path.glob("test_batch*"))
    if batches:
        return load_cifar10(batches)
    cifar = "data_batch_*" if split == "train" else "test_batch"
    raise ConfigError(f"{str(path)!r} holds neither {prefix}-images-idx3-ubyte[.gz] + {prefix}-labels-idx1-ubyte[.gz] nor {cifar} files")


def load_image_data(name_or_path, n: int | None = None, seed: int = 0, split: str = "train",
                    **synthetic) -> tuple[np.ndarray, np.ndarray]:
    """Images by name or path: "digits"; "synthetic" (n images, default 100, from `seed`; other
    keywords go to synthetic_images); a directory (load_image_dir); an .npz; an idx3-ubyte[.gz]
    images file (its labels file beside it); a CIFAR-10 data_batch_* / test_batch file. With `n`,
    a real data set is subsampled to n images with `seed` (subsample)."""
    if synthetic and name_or_path != "synthetic":
        raise ConfigError(f"options {sorted(synthetic)} apply only to the synthetic images")
    if name_or_path == "synthetic":
        return synthetic_images(100 if n is None else n, seed=seed, **synthetic)
    if name_or_path == "digits":
        x, y = load_digits()
    else:
        path = Path(name_or_path)
        if path.is_dir():
            x, y = load_image_dir(path, split)
        elif not path.exists():
            raise ConfigError(f"image data {str(name_or_path)!r} is neither {' nor '.join(map(repr, SOURCES))} nor an existing file or directory")
        elif path.suffix == ".npz":
            x, y = load_images_npz(path)
        elif (pair := _idx_pair(path)) is not None:
            x, y = load_mnist_idx(*pair)
        elif path.name.startswith(("data_batch", "test_batch")):
            x, y = load_cifar10(path)
        else:
            raise ConfigError(f"image file {str(path)!r} is not an .npz, an *images-idx3-ubyte[.gz] file or a CIFAR-10 data_batch_*/test_batch")
    return (x, y) if n is None else subsample(x, y, n, seed)




# ---------------------------------------------------------------------------
# Targets


def regression_targets(y) -> np.ndarray:
    """The label itself as a float64 regression target (the paper regresses on the digit value)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ConfigError(f"labels must be (n,), got shape {y.shape}")
    check_real_finite("labels", y=y)
    return y.astype(np.float64)


def one_hot(y, k: int | None = None) -> np.ndarray:
    """float64 (n, k) one-hot rows for integer labels 0…k−1 (k defaults to max label + 1)."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise ConfigError(f"labels must be (n,) with n ≥ 1, got shape {y.shape}")
    check_real_finite("labels", y=y)
    if not np.all(y == np.round(y)) or y.min() < 0:
        raise ConfigError("labels must be non-negative integers for one-hot targets")
    y = y.astype(np.int64)
    if k is None:
        k = int(y.max()) + 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if y.max() >= k:
        raise ConfigError(f"label {int(y.max())} does not fit k = {k} classes")
    return np.eye(int(k), dtype=np.float64)[y]
