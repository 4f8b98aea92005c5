"""Activations with the quantities the effective models need: σ(0), σ'(0) and smoothness."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ...errors import ConfigError


class Activation(NamedTuple):
    name: str
    fn: Callable
    slope0: float  # σ'(0)
    smooth: bool  # σ smooth at 0, as the expansions (3.4) and (A.4) assume
    # σ'(z) written through the output h = σ(z), so a backward pass reuses the forward's h instead
    # of keeping z (None: σ' = 1). relu: h > 0 ⟺ z > 0 (σ'(0) taken as 0). sigmoid is the shifted
    # one, h = s − 1/2 with s = 1/(1+e^{−z}): σ' = s (1 − s) = 1/4 − h².
    derivative_of_output: Callable | None = None

    @property
    def effective_ok(self) -> bool:
        """The effective model (3.6) needs smooth σ with σ(0) = 0 and σ'(0) ≠ 0."""
        return self.smooth and self.slope0 != 0.0


ACTIVATIONS = {
    "tanh": Activation("tanh", jnp.tanh, 1.0, True, lambda h: 1 - h * h),
    # σ'(0) undefined; not smooth at 0
    "relu": Activation("relu", jax.nn.relu, 0.0, False, lambda h: (h > 0).astype(h.dtype)),
    # shifted: σ(0) = 0
    "sigmoid": Activation("sigmoid", lambda z: jax.nn.sigmoid(z) - 0.5, 0.25, True, lambda h: 0.25 - h * h),
    "identity": Activation("identity", lambda z: z, 1.0, True, None),
}


def get(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None
