"""The user's own image files: MNIST IDX (gzip or not) and CIFAR-10 python-pickle batches.

No download is possible, so users point the CNN sweeps at the copies they have. Every reader
checks the format it expects and raises ConfigError with one line naming the file and the problem.
Images come back as float64 (n, H, W, C) scaled to [0, 1], labels as int64 (n,).
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from .config import ConfigError

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # magic numbers: unsigned bytes, 3 and 1 dims


def _read_bytes(path: Path, what: str) -> bytes:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":  # gzip
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ConfigError(f"{what} {str(path)!r} is a broken gzip file ({type(e).__name__})") from None
    return raw


def read_idx(path, magic: int) -> np.ndarray:
    """One IDX file: big-endian magic (0x0803 images, 0x0801 labels), the dimensions, then uint8."""
    what = "IDX images file" if magic == IDX_IMAGES else "IDX labels file"
    raw = _read_bytes(Path(path), what)
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim:
        raise ConfigError(f"{what} {str(path)!r} is too short for its header ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ConfigError(f"{what} {str(path)!r} has magic number {found:#010x}, expected {magic:#010x}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    payload = raw[4 + 4 * ndim:]
    if len(payload) != int(np.prod(dims)):
        raise ConfigError(f"{what} {str(path)!r} holds {len(payload)} data bytes; its header {dims} needs {int(np.prod(dims))}")
    return np.frombuffer(payload, np.uint8).reshape(dims)


def load_mnist(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style IDX pair: images (n, H, W) uint8 and labels (n,) → x (n, H, W, 1) in [0, 1], y."""
    x = read_idx(images_path, IDX_IMAGES)
    y = read_idx(labels_path, IDX_LABELS)
    if len(x) != len(y):
        raise ConfigError(f"IDX files {str(images_path)!r} and {str(labels_path)!r} hold {len(x)} images but {len(y)} labels")
    if len(x) == 0:
        raise ConfigError(f"IDX images file {str(images_path)!r} holds no image")
    return x[..., None].astype(np.float64) / 255.0, y.astype(np.int64)


def load_cifar10(paths) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 python batches (dicts with b"data" (N, 3072) uint8, rows R, G, B planes of 32×32,
    and b"labels"), concatenated → x (n, 32, 32, 3) in [0, 1], y. Unpickling runs code from the
    file: read only batches you trust (your own copy of the data set)."""
    xs, ys = [], []
    for path in [paths] if isinstance(paths, (str, Path)) else list(paths):
        raw = _read_bytes(Path(path), "CIFAR-10 batch")
        try:
            batch = pickle.loads(raw, encoding="bytes")
        except Exception as e:  # any unpickling failure is a bad file
            raise ConfigError(f"CIFAR-10 batch {str(path)!r} is not a python pickle ({type(e).__name__})") from None
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise ConfigError(f"CIFAR-10 batch {str(path)!r} lacks the b'data' and b'labels' entries")
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise ConfigError(f"CIFAR-10 batch {str(path)!r} has data {data.shape} and {len(labels)} labels; expected (N, 3072) and N")
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(labels)
    if not xs:
        raise ConfigError("no CIFAR-10 batch file given")
    return np.concatenate(xs).astype(np.float64) / 255.0, np.concatenate(ys).astype(np.int64)


def load_image_dir(path) -> tuple[np.ndarray, np.ndarray]:
    """A directory with an MNIST IDX pair (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz])
    or CIFAR-10 batches (data_batch_*)."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"image directory {str(path)!r} does not exist")
    find = lambda stem: next((p for p in (path / stem, path / f"{stem}.gz") if p.exists()), None)
    images, labels = find("train-images-idx3-ubyte"), find("train-labels-idx1-ubyte")
    if images and labels:
        return load_mnist(images, labels)
    batches = sorted(path.glob("data_batch_*"))
    if batches:
        return load_cifar10(batches)
    raise ConfigError(f"{str(path)!r} holds neither train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] nor data_batch_* files")
