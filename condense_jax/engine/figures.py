"""Figure helpers every family's plots share: an Agg figure with no pyplot state (safe in threads,
never opens a window, nothing to close), and one way to save it."""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

DPI = 120
FORMATS = ("png", "pdf", "svg")
_FORMAT = contextvars.ContextVar("condense_jax_figure_format", default="png")


@contextlib.contextmanager
def output_format(fmt: str):
    """Within the block, `save` writes `fmt` (png, or pdf / svg for a paper) whatever suffix the
    caller named: `with output_format("pdf"): kinds.figures(out)`."""
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {FORMATS}, got {fmt!r}")
    token = _FORMAT.set(fmt)
    try:
        yield
    finally:
        _FORMAT.reset(token)


def figure(nrows: int = 1, ncols: int = 1, size=(6.0, 4.4), sharex=False, layout: str | None = "constrained"):
    """(fig, axes): a Figure of `size` inches on the Agg canvas and its nrows × ncols axes (a 2-D
    array)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout=layout)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, sharex=sharex, squeeze=False)


def save(fig, path: Path) -> Path:
    """Write `fig` at `path` in the current output format (PNG unless `output_format` says
    otherwise; the suffix follows), its folder made; return the path written."""
    path = Path(path).with_suffix("." + _FORMAT.get())
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
