"""Every shipped sweep spec, and each of its variants, is a valid spec."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from condense_jax.kinds import load_spec

SPECS = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.toml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_and_variants_parse(path):
    variants = [None, *tomllib.loads(path.read_text()).get("variants", {})]
    for variant in variants:
        spec, extra = load_spec(path, variant)
        assert spec.n_runs >= 1
        if variant is not None:
            assert spec.name.endswith(f"_{variant}")
