"""Figures of training sweeps (condense_jax.train_plots) on synthetic tables in the engine's schema."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from condense_jax.engine import store
from condense_jax.errors import ConfigError
from condense_jax.gd import plots as tp

STEPS = np.unique(np.concatenate([[0], np.geomspace(1, 10_000, 40)]).round().astype(np.int64))
WIDTH = 6


def _loss_curve(l0, t_escape):
    """A plateau at l0, then a drop to 0.05·l0 around t_escape (smooth in log step)."""
    z = (np.log(np.maximum(STEPS, 0.5)) - np.log(t_escape)) * 4.0
    return l0 * (1.0 - 0.95 / (1.0 + np.exp(-z)))


def three_layer_tables(seed=0):
    rng = np.random.default_rng(seed)
    rows, series = [], []
    rid = 0
    for width in (WIDTH, 8):
        for alpha in (1.0, 1.5, 2.0):
            for s in range(2):
                eps = float(width) ** -alpha
                l0 = 0.4 + 0.01 * s
                t_esc = 30.0 * 10 ** (alpha - 1.0) * (1 + 0.2 * s)
                loss = _loss_curve(l0, t_esc)
                status = "finished"
                if rid == 3:  # diverged: loss blows up, never escapes
                    loss = l0 * np.exp(STEPS / 2000.0)
                    status = "diverged"
                below = np.nonzero(loss <= 0.5 * l0)[0]
                esc = int(STEPS[below[0]]) if below.size else None
                pred = np.nan if rid in (1, 7) else 0.8 * t_esc
                a2_in = np.minimum(width, np.floor(width * np.linspace(0.3, 1.2, STEPS.size))).astype(np.int64)
                a2_out = np.minimum(width, np.floor(width * np.linspace(0.5, 1.1, STEPS.size))).astype(np.int64)
                pairs_in = np.minimum(width**2, (a2_in**2)).astype(np.int64)
                pairs_out = np.minimum(width**2, (a2_out**2)).astype(np.int64)
                holds = (a2_in == width) & (a2_out == width) & (pairs_in == width**2) & (pairs_out == width**2)
                full = int(STEPS[np.argmax(holds)]) if holds.any() else None
                rows.append(dict(
                    run_id=rid, model="three-layer", activation="tanh", width=width, seed=s, scale=eps,
                    scale_exponent=(np.nan if s == 1 else alpha), lr=5e-3, optimizer="gd", steps=int(STEPS[-1]),
                    n=100, d=2, status=status, stop_step=(2000 if status == "diverged" else int(STEPS[-1])),
                    loss_initial=l0, loss_final=float(loss[-1]), escape_fraction=0.5, escape_step=esc,
                    predicted_escape_step=pred, t_star=1.0, kappa=0.5, full_hold_step=full,
                    max_pos_sum=int(rng.integers(width, 2 * width + 1)), cos_v_w1=0.99, n_dir_w1=2,
                    rd_a=1.0, rd_w2=1.0, rd_w1=1.0,
                ))
                series.append(pd.DataFrame(dict(
                    run_id=np.full(STEPS.size, rid, np.int64), step=STEPS, loss=loss,
                    rd_a=np.linspace(0, 1, STEPS.size), rd_w2=np.linspace(0, 1, STEPS.size),
                    rd_w1=np.linspace(0, 1, STEPS.size), energy=np.geomspace(1e-3, 1e3, STEPS.size),
                    norm_a=1.0, norm_w2=1.0, norm_c=1.0, a2_in=a2_in, a2_out=a2_out, a2_pos_sum=a2_in + a2_out,
                    a2_in_pairs=pairs_in, a2_out_pairs=pairs_out, a2_holds=holds,
                    cos_v_w1=np.linspace(0.6, 1, STEPS.size), n_dir_w1=2, n_dir_w2=2,
                )))
                rid += 1
    runs = pd.DataFrame(rows)
    for c in ("escape_step", "full_hold_step"):
        runs[c] = pd.array(runs[c].tolist(), dtype="Int64")
    return runs, pd.concat(series, ignore_index=True)


def row_cos(w):
    u = w / np.linalg.norm(w, axis=1, keepdims=True)
    return u @ u.T


def cosine_table(run_ids, width=WIDTH, seed=0):
    """Random rows in R² at step 0; rows on ±v (shuffled signs, a little noise) at the last step."""
    rng = np.random.default_rng(seed)
    out = []
    v = np.array([0.6, 0.8])
    for rid in run_ids:
        w0 = rng.normal(size=(width, 2))
        signs = rng.permutation(np.r_[np.ones(width // 2), -np.ones(width - width // 2)])
        w1 = signs[:, None] * v + 0.01 * rng.normal(size=(width, 2))
        for step, w in ((0, w0), (int(STEPS[-1]), w1)):
            for layer in ("w1", "w2"):
                out.append((rid, step, layer, width, row_cos(w).astype(np.float32).ravel()))
    return pd.DataFrame(out, columns=["run_id", "step", "layer", "width", "cos"])


def deep_linear_tables():
    rows, series = [], []
    for rid, seed in enumerate(range(3)):
        l0 = 2.0
        loss = _loss_curve(l0, 200.0 * (1 + seed))
        rows.append(dict(run_id=rid, model="deep-linear", activation="linear", width=10, seed=seed,
                         scale=10.0**-2, scale_exponent=2.0, lr=0.1, optimizer="gd", steps=int(STEPS[-1]), n=10,
                         d=0, status="finished", stop_step=int(STEPS[-1]), loss_initial=l0,
                         loss_final=float(loss[-1]), escape_fraction=0.5, escape_step=int(STEPS[np.argmax(loss <= 1.0)]),
                         predicted_escape_step=np.nan, t_star=np.nan, kappa=np.nan, rd_w1=1.0, rd_w2=1.0))
        sv = {f"sv_{j}": np.geomspace(1e-6, 1.0 / j, STEPS.size) for j in (1, 2, 3)}
        series.append(pd.DataFrame(dict(run_id=np.full(STEPS.size, rid, np.int64), step=STEPS, loss=loss,
                                        rd_w1=0.5, rd_w2=0.5, rd_w3=0.5, energy=1.0, **sv)))
    runs = pd.DataFrame(rows)
    runs["escape_step"] = pd.array(runs["escape_step"].tolist(), dtype="Int64")
    return runs, pd.concat(series, ignore_index=True)


def write_dir(path: Path, **tables) -> Path:
    for name, df in tables.items():
        (path / name).mkdir(parents=True, exist_ok=True)
        store.write_table(df, path / name / "part-00000.parquet", {"config": {"kind": "train"}})
    return path


def by_gid(ax, prefix):
    return [a for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)]


def span_start(patch) -> float:
    if hasattr(patch, "get_x"):
        return float(patch.get_x())
    return float(np.min(patch.get_xy()[:, 0]))


@pytest.fixture(scope="module")
def three():
    return three_layer_tables()


def test_loss_figure_lines_markers_and_shading(three):
    runs, series = three
    ids = [0, 1, 3, 4]
    fig = tp.loss_figure(runs, series, ids)
    assert isinstance(fig, Figure)
    ax_log, ax_lin = fig.axes[:2]
    for ax in (ax_log, ax_lin):
        lines = by_gid(ax, "loss:")
        assert sorted(int(line.get_gid()[5:]) for line in lines) == ids
        byrun = runs.set_index("run_id")
        markers = {int(m.get_gid()[7:]): m.get_xdata()[0] for m in by_gid(ax, "escape:")}
        # run 3 diverged and never escaped: no marker, no shading
        assert set(markers) == {0, 1, 4}
        for rid, x in markers.items():
            assert x == byrun.loc[rid, "escape_step"]
        spans = {int(p.get_gid()[6:]): span_start(p) for p in by_gid(ax, "fails:")}
        assert set(spans) == {0, 1, 3, 4}
        assert spans[3] == pytest.approx(byrun.loc[3, "predicted_escape_step"])
        assert spans[0] == pytest.approx(byrun.loc[0, "predicted_escape_step"])
        assert spans[4] == pytest.approx(byrun.loc[4, "predicted_escape_step"])
        assert spans[1] == byrun.loc[1, "escape_step"]  # no prediction: shaded from the measured escape
    assert ax_log.get_yscale() == "log" and ax_log.get_xscale() == "symlog"
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "measured escape" in legend and "1 run(s) without a prediction" in legend
    assert "ε" in fig._suptitle.get_text() and "m =" in fig._suptitle.get_text()
    # the diverged run is drawn only up to its stop step
    line3 = by_gid(ax_log, "loss:3")[0]
    assert line3.get_xdata().max() <= 2000


def test_loss_figure_caps_and_picks_deterministically(three):
    runs, series = three
    fig = tp.loss_figure(runs, series)
    lines = by_gid(fig.axes[0], "loss:")
    assert 1 <= len(lines) <= tp.MAX_LINES
    assert tp.pick_train_runs(runs) == tp.pick_train_runs(runs.sample(frac=1, random_state=1))
    # one seed per (width, ε) first: all 6 groups are represented
    picked = runs.set_index("run_id").loc[tp.pick_train_runs(runs)]
    assert len(picked.groupby(["width", "scale"])) == 6
    assert len(tp.pick_train_runs(runs, k=3)) == 3


def test_block_order_makes_blocks_contiguous():
    cos = cosine_table([0], width=9)
    final = cos[(cos["step"] > 0) & (cos["layer"] == "w1")].iloc[0]
    m = np.asarray(final["cos"], dtype=float).reshape(9, 9)
    order = tp.block_order(m)
    assert sorted(order.tolist()) == list(range(9))
    signs = np.sign(m[order[0], order])
    assert np.count_nonzero(np.diff(signs)) == 1  # two blocks, one boundary
    assert np.array_equal(order, tp.block_order(m))


def test_cosine_heatmaps_show_the_reordered_matrices():
    cos = cosine_table([5, 6])
    fig = tp.cosine_heatmaps(cos, 6)
    assert isinstance(fig, Figure)
    sel = cos[(cos["run_id"] == 6) & (cos["layer"] == "w1")].sort_values("step")
    mats = [np.asarray(c, dtype=float).reshape(WIDTH, WIDTH) for c in sel["cos"]]
    order = tp.block_order(mats[-1])
    assert np.array_equal(fig.condense_order, order)
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len(images) == 2
    for im, m in zip(images, mats):
        assert np.allclose(np.asarray(im.get_array()), m[np.ix_(order, order)])
        assert im.get_clim() == (-1.0, 1.0)
    assert "step 0" in fig.axes[0].get_title()
    fig = tp.cosine_heatmaps(cos, 5, steps=[0], layer="w2", absolute=True)
    im = fig.axes[0].get_images()[0]
    assert im.get_clim() == (0.0, 1.0) and np.asarray(im.get_array()).min() >= 0
    with pytest.raises(ConfigError):
        tp.cosine_heatmaps(cos, 99)


def test_assumption2_figure(three):
    runs, series = three
    fig = tp.assumption2_figure(series, 0, width=WIDTH)
    s = series[series["run_id"] == 0]
    ax = fig.axes[0]
    assert np.array_equal(by_gid(ax, "a2_in")[0].get_ydata(), s["a2_in"].to_numpy(float))
    assert np.array_equal(by_gid(ax, "a2_out")[0].get_ydata(), s["a2_out"].to_numpy(float))
    width_line = by_gid(ax, "width")[0]
    assert width_line.get_ydata()[0] == WIDTH and width_line.get_linestyle() == "--"
    first = int(s["step"][s["a2_holds"]].iloc[0])
    assert by_gid(ax, "full_hold")[0].get_xdata()[0] == first == runs.loc[0, "full_hold_step"]
    pairs = by_gid(fig.axes[1], "a2_in_pairs")[0].get_ydata()
    assert pairs.max() <= 1.0 and pairs[-1] == 1.0


def test_max_pos_sum_figure(three):
    runs, _ = three
    fig = tp.max_pos_sum_figure(runs)
    ax = fig.axes[0]
    pts = by_gid(ax, f"seeds:{WIDTH}")[0]
    r = runs[runs["width"] == WIDTH]
    # α from scale_exponent where given, else −log ε / log m: the same values here
    assert np.allclose(np.sort(pts.get_xdata()), np.sort(np.repeat([1.0, 1.5, 2.0], 2)))
    frac = r["max_pos_sum"].to_numpy(float) / (2 * WIDTH)
    assert np.allclose(np.sort(pts.get_ydata()), np.sort(frac))
    mean = [c for c in ax.containers if c.get_label().startswith(f"m = {WIDTH}")][0]
    assert np.allclose(mean.lines[0].get_ydata(), [frac[:2].mean(), frac[2:4].mean(), frac[4:].mean()])


def test_escape_figure_counts_and_points(three):
    runs, _ = three
    fig = tp.escape_figure(runs)
    ax = fig.axes[0]
    ok = runs[(runs["status"] != "diverged") & runs["escape_step"].notna() & runs["predicted_escape_step"].notna()]
    offsets = ax.collections[0].get_offsets()
    assert np.allclose(offsets[:, 0], ok["predicted_escape_step"]) and np.allclose(offsets[:, 1], ok["escape_step"].astype(float))
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert "1 diverged" in ax.get_title() and "2 without prediction" in ax.get_title()
    assert f"{len(ok)} runs shown" in ax.get_title()
    # the ε-scaling panel: the fitted slope of the measured medians against ε is in its legend
    eps_ax = [a for a in fig.axes if a.get_xlabel() == "init scale ε"][0]
    esc = runs[(runs["status"] != "diverged") & runs["escape_step"].notna()]
    levels = np.unique(esc["scale"])
    if len(levels) >= 2:
        med = [np.median(esc.loc[esc["scale"] == e, "escape_step"].astype(float)) for e in levels]
        slope = np.polyfit(np.log(levels), np.log(med), 1)[0]
        assert any(f"slope {slope:.3f}" in t.get_text() for t in eps_ax.get_legend().get_texts())


def test_matrix_factorisation_figure():
    runs, series = deep_linear_tables()
    fig = tp.matrix_factorisation_figure(series, runs)
    ax_l, ax_s = fig.axes[:2]
    assert len(by_gid(ax_l, "loss:")) == 3
    assert len(by_gid(ax_s, "sv_")) == 9 and len(by_gid(ax_s, "sv_1:")) == 3
    rel = by_gid(fig.axes[2], "rel:")
    assert len(rel) == 3 and all(line.get_ydata()[0] == 1.0 for line in rel)


def test_figures_from_dir_three_layer(tmp_path, three):
    runs, series = three
    d = write_dir(tmp_path / "res", runs=runs, series=series, cosines=cosine_table([0, 2, 4]))
    paths = tp.figures_from_dir(d, tmp_path / "figs")
    names = {p.name for p in paths}
    assert {"loss_three_layer.png", "escape.png", "max_pos_sum.png"} <= names
    assert any(n.startswith("assumption2_run") for n in names)
    assert {"cosines_w1_run0.png", "cosines_w2_run0.png"} <= names
    for p in paths:
        assert p.parent == tmp_path / "figs" and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_from_dir_skips_missing_tables(tmp_path, three):
    runs, _ = three
    d = write_dir(tmp_path / "res", runs=runs.drop(columns=["max_pos_sum"]))
    paths = tp.figures_from_dir(d)
    assert [p.name for p in paths] == ["escape.png"] and paths[0].parent == d / "figures"
    assert tp.read_cosines(d).empty and tp.read_series(d).empty
    with pytest.raises(ConfigError):
        tp.figures_from_dir(tmp_path / "nothing")


def test_figures_from_dir_deep_linear_and_script(tmp_path, capsys):
    runs, series = deep_linear_tables()
    d = write_dir(tmp_path / "res", runs=runs, series=series)
    spec = importlib.util.spec_from_file_location(
        "train_figures", Path(__file__).resolve().parents[1] / "analysis" / "train_figures.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(d), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in out) == ["loss_deep_linear.png", "matrix_factorisation.png"]
    assert all(Path(p).stat().st_size > 1000 for p in out)
    assert script.main([str(tmp_path / "missing")]) == 2


def test_figures_without_data_raise_a_clear_error(three):
    runs, series = three
    cases = [
        (lambda: tp.loss_figure(runs.iloc[:0], series.iloc[:0]), "no run with a recorded loss"),
        (lambda: tp.max_pos_sum_figure(runs.iloc[:0]), "no three-layer run"),
        (lambda: tp.matrix_factorisation_figure(series.iloc[:0], runs.iloc[:0]), "no deep-linear run"),
        (lambda: tp.escape_figure(runs.assign(escape_step=pd.NA)), "no run escaped"),
    ]
    for make, words in cases:
        with pytest.raises(ConfigError, match=words):
            make()


def test_escape_figure_with_one_init_scale_has_no_empty_panel_and_no_colourbar(three):
    runs, _ = three
    one = runs[runs["scale"] == runs["scale"].iloc[0]]
    fig = tp.escape_figure(one)
    assert len(fig.axes) == 1  # no ε-scaling panel, no colourbar axes
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(f"ε = {one['scale'].iloc[0]:g}" in t for t in labels), labels
    many = tp.escape_figure(runs)
    assert len(np.unique(runs["scale"])) >= 2 and len(many.axes) == 3  # scatter, its ε colourbar, the scaling panel
