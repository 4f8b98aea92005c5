"""Two-class data for the four-phase classifier (issue #8): generators and the separability check."""

from __future__ import annotations

import numpy as np
import pytest

from condense_jax.errors import ConfigError
from condense_jax.four_phases import data as two_class


def angle_deg(v):
    return np.degrees(np.arctan2(v[:, 1], v[:, 0]))


def test_angled_classes_geometry():
    x, y = two_class.angled_classes(400, delta=120, spread=15, seed=1)
    assert set(y) == {-1.0, 1.0}
    ang = angle_deg(x)
    assert np.all(np.abs(ang[y > 0]) <= 15 + 1e-9)
    assert np.all(np.abs(ang[y < 0] - 120) <= 15 + 1e-9)
    assert np.all((np.linalg.norm(x, axis=1) >= 0.5 - 1e-12) & (np.linalg.norm(x, axis=1) <= 1.5 + 1e-12))
    np.testing.assert_array_equal(x, two_class.angled_classes(400, delta=120, spread=15, seed=1)[0])


def test_separability_by_linear_program():
    x, y = two_class.angled_classes(200, delta=120, spread=15, seed=0)
    w = two_class.check_separable(x, y)
    assert np.all(y * (x @ w) >= 1 - 1e-7)  # the LP's certificate
    # e₁ and −e₁ in the same class cannot be separated by a hyperplane through the origin
    xs = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ConfigError, match="not linearly separable"):
        two_class.check_separable(xs, np.array([1.0, 1.0, -1.0]))
    assert two_class.check_separable(xs, np.array([1.0, 1.0, -1.0]), allow=True) is None
    # XOR through the origin: ±e₁ against ±e₂
    xor = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert two_class.separating_direction(xor, np.array([1.0, 1.0, -1.0, -1.0])) is None
    # the widest classes the generator allows (spread just under Δ/2) are still separable
    xw, yw = two_class.angled_classes(300, delta=170, spread=84, seed=2)
    assert two_class.separating_direction(xw, yw) is not None


def test_orthogonal_and_digit_pair():
    x, y = two_class.orthogonal_classes(12, seed=3)
    g = x @ x.T
    np.testing.assert_allclose(g - np.diag(np.diag(g)), 0.0)
    assert two_class.check_separable(x, y) is not None
    xd, yd = two_class.digit_pair(0, 1, n=100, seed=0)
    assert xd.shape == (100, 64) and set(yd) == {-1.0, 1.0} and xd.max() <= 1.0
    assert two_class.check_separable(xd, yd) is not None  # 0 against 1 is separable through the origin


@pytest.mark.parametrize("call,words", [
    (lambda: two_class.angled_classes(10, delta=0), "Δ"),
    (lambda: two_class.angled_classes(10, delta=200), "Δ"),
    (lambda: two_class.angled_classes(10, delta=60, spread=40), "spread"),
    (lambda: two_class.angled_classes(0), "n must be"),
    (lambda: two_class.digit_pair(3, 3), "two different digits"),
    (lambda: two_class.check_separable(np.eye(2), np.array([1.0, 2.0])), "labels must be ±1"),
])
def test_bad_input_is_one_line(call, words):
    with pytest.raises(ConfigError, match=words):
        call()
