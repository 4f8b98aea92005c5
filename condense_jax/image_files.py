"""The user's own image files: MNIST IDX (gzip or not) and CIFAR-10 python-pickle batches.

The readers live in `condense_jax.images` (issue #5); this module keeps the older names.
"""

from __future__ import annotations

from .images import IDX_IMAGES, IDX_LABELS, _read_bytes, load_cifar10, load_image_dir, read_idx
from .images import load_mnist_idx as load_mnist

__all__ = ["IDX_IMAGES", "IDX_LABELS", "_read_bytes", "load_cifar10", "load_image_dir", "load_mnist", "read_idx"]
