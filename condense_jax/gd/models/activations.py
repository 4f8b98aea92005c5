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

    @property
    def effective_ok(self) -> bool:
        """The effective model (3.6) needs smooth σ with σ(0) = 0 and σ'(0) ≠ 0."""
        return self.smooth and self.slope0 != 0.0


ACTIVATIONS = {
    "tanh": Activation("tanh", jnp.tanh, 1.0, True),
    "relu": Activation("relu", jax.nn.relu, 0.0, False),  # σ'(0) undefined; not smooth at 0
    "sigmoid": Activation("sigmoid", lambda z: jax.nn.sigmoid(z) - 0.5, 0.25, True),  # shifted: σ(0) = 0
    "identity": Activation("identity", lambda z: z, 1.0, True),
}


def get(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None
