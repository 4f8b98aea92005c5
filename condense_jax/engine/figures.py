"""Figure helpers every family's plots share: an Agg figure with no pyplot state (safe in threads,
never opens a window, nothing to close), and one way to save it."""

from __future__ import annotations

from pathlib import Path

DPI = 120


def figure(nrows: int = 1, ncols: int = 1, size=(6.0, 4.4), sharex=False, layout: str | None = "constrained"):
    """(fig, axes): a Figure of `size` inches on the Agg canvas and its nrows × ncols axes (a 2-D
    array)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout=layout)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, sharex=sharex, squeeze=False)


def save(fig, path: Path) -> Path:
    """Write `fig` as a PNG at `path` (its folder made), return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
