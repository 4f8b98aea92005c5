"""The four-phase detector's thresholds (detect.py explains each): a light dataclass shared by the
spec (which validates them) and the detector (which uses them), so that neither imports the other."""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Detector:
    """Thresholds of the four-phase detector (detect.py, where each is explained)."""

    cos_tol: float = 0.98
    drop_tol: float = 0.02
    steep_slope: float = 1.5
    plateau_slope: float = 0.6
    plateau_min_loss: float = 0.02
    conv_band: tuple[float, float] = (0.8, 1.6)

    def __post_init__(self):
        if not (0 < self.cos_tol <= 1):
            raise ConfigError(f"cos_tol must lie in (0, 1], got {self.cos_tol!r}")
        if not (0 < self.drop_tol < 1):
            raise ConfigError(f"drop_tol must lie in (0, 1), got {self.drop_tol!r}")
        if not (0 < self.plateau_slope < self.steep_slope):
            raise ConfigError(f"need 0 < plateau_slope < steep_slope, got {self.plateau_slope!r}, {self.steep_slope!r}")
        if not (0 <= self.plateau_min_loss < 1):
            raise ConfigError(f"plateau_min_loss must lie in [0, 1), got {self.plateau_min_loss!r}")
        lo, hi = self.conv_band
        if not (0 < lo < hi):
            raise ConfigError(f"conv_band must be (low, high) with 0 < low < high, got {self.conv_band!r}")
