"""Figure helpers every family's plots share: an Agg figure with no pyplot state (safe in threads,
never opens a window, nothing to close), and one way to save it."""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

import numpy as np

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


# ---------------------------------------------------------------- paper style: ticks that never collide

# Log-axis tick levels, densest first: the major ticks at mantissas `subs` of each decade, or every
# `step`-th decade. `finish` starts at the densest level the axis's span allows and moves to the
# next one while any two tick labels of the axis overlap.
_LOG_LEVELS = ((1.0, 2.0, 3.0, 5.0), (1.0, 2.0, 5.0), (1.0, 3.0), (1.0,), 2, 3, 5)


def _plain_label(v, _pos=None) -> str:
    """0.02, 0.5, 1, 30, 200: an axis whose whole span lies between 1e-3 and 1e4."""
    return f"{v:g}" if np.isfinite(v) and v > 0 else ""


def _sci_label(v, _pos=None) -> str:
    """10⁻⁶ or 2×10⁵: an axis reaching below 1e-3 or above 1e4."""
    if not np.isfinite(v) or v <= 0:
        return ""
    e = int(np.floor(np.log10(v) + 1e-9))
    m = v / 10.0**e
    return f"$10^{{{e}}}$" if abs(m - 1) < 1e-6 else f"${m:.2g}\\times10^{{{e}}}$"


def _set_log_level(axis, level: int) -> None:
    from matplotlib.ticker import LogLocator, NullFormatter

    spec = _LOG_LEVELS[min(level, len(_LOG_LEVELS) - 1)]
    if isinstance(spec, tuple):
        major = LogLocator(10.0, subs=spec, numticks=1000)
    else:  # every spec-th decade
        lo, hi = sorted(axis.get_view_interval())
        first = np.floor(np.log10(max(lo, 1e-300)))
        decades = 10.0 ** np.arange(first, np.ceil(np.log10(max(hi, 1e-300))) + 1, spec)
        from matplotlib.ticker import FixedLocator

        major = FixedLocator(decades)
    axis.set_major_locator(major)
    lo, hi = sorted(axis.get_view_interval())
    axis.set_major_formatter(_plain_label if 0.99e-3 <= lo and hi < 1.01e4 else _sci_label)
    axis.set_minor_locator(LogLocator(10.0, subs="auto", numticks=1000))
    axis.set_minor_formatter(NullFormatter())
    axis._condense_level = level


def _start_level(axis) -> int:
    lo, hi = sorted(axis.get_view_interval())
    if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0 and hi > lo):
        return 3
    decades = np.log10(hi / lo)
    return 0 if decades < 1.2 else 1 if decades < 2.2 else 2 if decades < 3.2 else 3 if decades < 7 else 4 if decades < 13 else 5


def _tick_labels(axis, renderer):
    """The visible, non-empty major and minor tick labels of an axis whose tick lies in view, with
    their extents in display units."""
    lo, hi = sorted(axis.get_view_interval())
    span = hi - lo
    out = []
    for ticks, locs in ((axis.get_major_ticks(), axis.get_majorticklocs()), (axis.get_minor_ticks(), axis.get_minorticklocs())):
        for tick, loc in zip(ticks, locs):
            if not (lo - 1e-9 * abs(span) <= loc <= hi + 1e-9 * abs(span)):
                continue
            for label in (tick.label1, tick.label2):
                if label.get_visible() and label.get_text().strip():
                    out.append((label, label.get_window_extent(renderer)))
    return out


def _overlapping(boxes, pad: float = 0.5) -> list[tuple[int, int]]:
    """Pairs (i, j) of display-space boxes that overlap by more than `pad` pixels each way."""
    pairs = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if min(a.x1, b.x1) - max(a.x0, b.x0) > pad and min(a.y1, b.y1) - max(a.y0, b.y0) > pad:
                pairs.append((i, j))
    return pairs


def _axes_list(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.axison]


def _texts(fig):
    """(description, Text) of every title, axis label, legend text, suptitle and tick label."""
    out = [("suptitle", fig._suptitle)] if fig._suptitle is not None else []
    for leg in fig.legends:
        out += [("figure legend", t) for t in leg.get_texts()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        name = ax.get_title() or ax.get_label() or "axes"
        out += [(f"title of {name!r}", t) for t in (ax.title, ax._left_title, ax._right_title)]
        if ax.axison:
            out += [(f"x-label of {name!r}", ax.xaxis.label), (f"y-label of {name!r}", ax.yaxis.label)]
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            out += [(f"legend of {name!r}", t) for t in leg.get_texts()]
            if leg.get_title().get_text():
                out.append((f"legend title of {name!r}", leg.get_title()))
    return [(d, t) for d, t in out if t is not None and t.get_visible() and t.get_text().strip()]


def layout_problems(fig, draw: bool = True) -> list[str]:
    """What a reviewer would flag in a drawn figure, from the Matplotlib objects: two visible tick
    labels of one axis that overlap, a title / axis label / legend text / tick label that extends
    past the figure's edge (clipped), a visible axes without a y-label, and a visible axes with
    nothing drawn in it (an empty panel). [] when the figure is clean."""
    if draw:
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    edge = fig.bbox
    problems = []
    for ax in _axes_list(fig):
        name = ax.get_title() or ax.get_label() or "axes"
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = _tick_labels(axis, renderer)
            for i, j in _overlapping([b for _, b in labels]):
                problems.append(f"{which} tick labels {labels[i][0].get_text()!r} and {labels[j][0].get_text()!r} "
                                f"overlap in {name!r}")
            for label, box in labels:
                if box.x0 < edge.x0 - 1 or box.x1 > edge.x1 + 1 or box.y0 < edge.y0 - 1 or box.y1 > edge.y1 + 1:
                    problems.append(f"{which} tick label {label.get_text()!r} of {name!r} is clipped by the figure edge")
        if not ax.get_ylabel().strip():
            problems.append(f"axes {name!r} has no y-label")
        if not (ax.lines or ax.collections or ax.images or ax.patches or ax.texts or ax.artists or ax.containers):
            problems.append(f"axes {name!r} is empty")
    for what, text in _texts(fig):
        box = text.get_window_extent(renderer)
        if box.x0 < edge.x0 - 1 or box.x1 > edge.x1 + 1 or box.y0 < edge.y0 - 1 or box.y1 > edge.y1 + 1:
            problems.append(f"{what} {text.get_text()!r} extends past the figure's edge (clipped)")
    return problems


def finish(fig):
    """Make `fig` fit for a paper before it is returned: every log axis gets tick labels in one
    style (0.2, 0.5, 1, 2 … within 1e-3 to 1e4, else 10^k), as dense as its span allows, thinned level by level while two
    labels of one axis overlap (checked on a drawn figure); linear axes with colliding labels get
    fewer ticks. Returns `fig`."""
    from matplotlib.ticker import MaxNLocator

    axes = _axes_list(fig)
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                _set_log_level(axis, _start_level(axis))
    for _ in range(len(_LOG_LEVELS)):
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        crowded = [axis for ax in axes for axis in (ax.xaxis, ax.yaxis)
                   if _overlapping([b for _, b in _tick_labels(axis, renderer)])]
        if not crowded:
            break
        for axis in crowded:
            if axis.get_scale() == "log":
                _set_log_level(axis, getattr(axis, "_condense_level", _start_level(axis)) + 1)
            elif axis.get_scale() == "linear":
                n = len(axis.get_majorticklocs())
                axis.set_major_locator(MaxNLocator(nbins=max(2, n // 2), steps=[1, 2, 2.5, 5, 10]))
    return fig
