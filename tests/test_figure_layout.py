"""Figures fit for a paper (issue #19), checked on the Matplotlib objects, not by eye: after
`fig.canvas.draw()`, no two visible tick labels of one axis overlap, no title / axis label / legend
text / tick label extends past the figure's edge, every visible axes has a y-label and something
drawn in it (engine/figures.layout_problems). A control figure that breaks each rule shows the
checker can fail. The figure functions run on synthetic tables in the engine's schemas (fast); the
slow test runs every family's quick spec, made tiny by overrides, and checks every figure it saves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_phase import synthetic_runs
from test_train_plots import cosine_table, deep_linear_tables, three_layer_tables

from condense_jax.engine import figures
from condense_jax.gd import plots as gd_plots
from condense_jax.gd.phase_diagram import fit as phase
from condense_jax.gd.phase_diagram import plots as phase_plots
from condense_jax.ode import plots as ode_plots


def assert_clean(fig):
    problems = figures.layout_problems(fig)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the checker can fail


def test_checker_flags_overlapping_ticks_clipped_text_missing_labels_and_empty_panels():
    fig, axes = figures.figure(1, 2, (4.0, 2.5), layout=None)
    ax, empty = axes[0]
    ax.plot([1, 2], [1, 2])
    ax.set_xticks(np.linspace(1, 2, 40))  # 40 labels on 2 inches: they collide
    ax.set_title("a title far too long for this small figure, so that it runs past both of its edges " * 2)
    ax.set_ylabel("y")
    problems = figures.layout_problems(fig)
    assert any("x tick labels" in p and "overlap" in p for p in problems)
    assert any(p.startswith("title of") and "clipped" in p for p in problems)
    assert any("has no y-label" in p for p in problems) and any("is empty" in p for p in problems)
    # the same axes fixed: a clean figure passes
    fig, ((ax,),) = figures.figure(1, 1, (4.0, 2.5))
    ax.plot([1, 2], [1, 2])
    ax.set(title="short", ylabel="y", xlabel="x")
    assert_clean(fig)


def test_finish_thins_log_ticks_that_would_collide():
    """The default log formatter labels minor ticks on a span under a decade (2×10⁻¹, 3×10⁻¹, …),
    which collide on a narrow axis; `finish` labels as densely as the span allows without overlap."""
    fig, ((ax,),) = figures.figure(1, 1, (2.2, 2.0))
    ax.plot([0.41, 6.9], [0.1, 0.6])
    ax.set(xscale="log", yscale="log", ylabel="T*")
    assert any("overlap" in p for p in figures.layout_problems(fig))
    assert_clean(figures.finish(fig))
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("times" not in s for s in labels)  # plain numbers on a span within 1e-3..1e4


# ---------------------------------------------------------------- every figure function


def ode_tables(widths=(10, 30), ratios=(0.1, 0.3, 1.0, 3.0), seeds=3, seed=0):
    """Runs and series of the three-layer ODE sweep's schema: T* below Theorem 1's bound,
    saturating in the imbalance above 1, E(t) on the balanced law (T* − t)^(−3) near T*."""
    rng = np.random.default_rng(seed)
    runs, series = [], []
    rid = 0
    for m in widths:
        for r in ratios:
            for s in range(seeds):
                t_star = 0.4 * (m / 10) ** -0.5 * min(r, 1.0) ** 0.5 * np.exp(0.05 * rng.standard_normal())
                e0 = (1.5 * t_star) ** -3.0
                runs.append(dict(run_id=rid, seed=s, width=m, depth=3, scale_a=1.0, scale_b=1.0, scale_c=1 / r, E0=e0,
                                 t_star=t_star, t_star_thm1_bound=e0 ** (-1 / 3), t_final_stage=0.9 * t_star,
                                 status="blowup", theory_status="blowup"))
                t = t_star * (1 - np.geomspace(1, 1e-6, 40))
                t[0] = 0.0
                left = t_star - t
                series.append(pd.DataFrame(dict(
                    run_id=rid, t=t, energy=left**-3.0 * (1 - 0.5 * left / t_star), final_stage=t >= 0.9 * t_star,
                    thm2_rate=1 + left / t_star, cos_zeta=0.99, norm_a2=np.full(t.size, r**2 * (1 + 0.05 * rng.standard_normal())),
                    norm_c2=1.0)))
                rid += 1
    runs = pd.DataFrame(runs)
    return runs, pd.concat(series, ignore_index=True)


def test_ode_figures():
    runs, series = ode_tables()
    chosen = ode_plots.pick_runs(runs)
    with pytest.MonkeyPatch.context() as mp:
        drawn = []
        mp.setattr(figures, "save", lambda fig, path: drawn.append(fig) or path)
        ode_plots.tstar_bounds_figure(runs, series, "unused.png", chosen)
    assert_clean(drawn[0])
    assert_clean(ode_plots.ratio_figure(runs, series, chosen))
    assert_clean(ode_plots.scaling_figure(runs, series))
    one_width = runs[runs["width"] == 10]  # one width: the panel says "no fit" instead of a line
    fig = ode_plots.scaling_figure(one_width, series[series["run_id"].isin(one_width["run_id"])])
    assert_clean(fig)
    assert "one width" in " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    nums = ode_plots.theory_numbers(runs, series)
    assert nums["imbalance_exponent"]["law"] == "range" and nums["imbalance_exponent"]["x_hi"] < 1.5


def test_training_figures():
    runs, series = three_layer_tables()
    assert_clean(gd_plots.loss_figure(runs, series))
    assert_clean(gd_plots.assumption2_figure(series, 0, width=6))
    assert_clean(gd_plots.max_pos_sum_figure(runs))
    assert_clean(gd_plots.escape_figure(runs))
    assert_clean(gd_plots.cosine_heatmaps(cosine_table([0]), 0))
    dl_runs, dl_series = deep_linear_tables()
    assert_clean(gd_plots.matrix_factorisation_figure(dl_series, dl_runs))
    rng = np.random.default_rng(0)
    assert_clean(gd_plots.z_spectrum_figure(rng.normal(size=(20, 8, 8, 1)), rng.normal(size=20), 3))
    kernels = pd.DataFrame(dict(run_id=[0], step=[10], layer=["kernels_conv1"], width=[8],
                                cos=[np.c_[rng.uniform(-1, 1, 8), rng.uniform(0, 5, 8)].ravel()]))
    assert_clean(gd_plots.kernel_figure(kernels, 0))


def test_escape_marker_is_on_a_measured_record():
    """The escape circle sits on the loss of the first record at/after the escape step, where the
    loss is at most the threshold: never on a point interpolated between two records."""
    runs, series = three_layer_tables()
    fig = gd_plots.loss_figure(runs, series, run_ids=[0])
    ax_lin = fig.axes[1]
    (marker,) = [a for a in ax_lin.get_lines() if a.get_gid() == "escape:0"]
    x, y = marker.get_xdata()[0], marker.get_ydata()[0]
    s = series[series["run_id"] == 0]
    rec = s[s["step"] == x]
    assert len(rec) == 1 and x >= int(runs.loc[0, "escape_step"])
    assert y == pytest.approx(float(rec["loss"].iloc[0]) / runs.loc[0, "loss_initial"]) and y <= 0.5


def test_phase_diagram_figures():
    points = {(gp, g): (0.6 if g > max(1, 1 + gp) else -0.6) for gp in (-0.5, 0.5) for g in (0.5, 1.75)}
    runs = synthetic_runs(points, seeds=3, rng=np.random.default_rng(0))
    table = phase.phase_table(runs)
    assert_clean(phase_plots.phase_figure(table))
    assert_clean(phase_plots.rd_width_figure(runs, table))


def test_four_phase_figures():
    from condense_jax.four_phases import plots as fp_plots

    rng = np.random.default_rng(0)
    rows = []
    for rid, (eps, delta, n, m) in enumerate((e, d, n, m) for e in (1e-2, 1e-4, 1e-6) for d in (60, 120) for n in (50, 100)
                                             for m in (10, 20)):
        b = np.log(1 / eps)
        rows.append(dict(run_id=rid, seed=0, width=m, n=n, delta=delta, class_angle=delta, init_scale=eps, log_inv_eps=b,
                         t_I_II=2 + b, t_II_III=5 + 3 * b, t_III_IV=50 + 10 * b, t_drop=3 + 2 * b, t_escape=6 + 3 * b,
                         phase_I=b > 5, phase_II=True, phase_III=bool(rng.random() < 0.7), phase_IV=True))
    runs = pd.DataFrame(rows)
    runs["phases"] = ["+".join(p for p in ("I", "II", "III", "IV") if r[f"phase_{p}"]) for _, r in runs.iterrows()]
    assert_clean(fp_plots.sweep_figure(runs))
    run = runs.iloc[-1]
    t = np.geomspace(0.1, 2000, 60)
    series = pd.DataFrame(dict(t=t, loss=np.log(2) / (1 + t / 20), pattern_changes=(np.arange(60) % 7 == 0).astype(int),
                               cond_pos=np.minimum(1, t / 10), cond_neg=np.minimum(1, t / 12), live=np.full(60, 8),
                               accuracy=np.minimum(1, 0.5 + t / 100)))
    assert_clean(fp_plots.timeline_figure(run, series))
    k = np.arange(6)
    neurons = pd.concat([pd.DataFrame(dict(t=tt, neuron=k, u=rng.normal(size=6), v=rng.normal(size=6),
                                           a=np.where(k % 2, 1.0, -1.0))) for tt in t[::10]])
    assert_clean(fp_plots.arrows_figure(run, neurons))


# ---------------------------------------------------------------- every quick spec, end to end

QUICK = {  # each packaged spec's quick variant (imbalance has none), made tiny
    "imbalance": (None, dict(widths=[6, 12], seeds=3, scale_c=[0.3, 1.0, 3.0])),
    "fig1_three_layer": ("quick", dict(widths=[12], seeds=2, steps=3000, lr_drops=[[2000, 5e-3]], n_records=30)),
    "fig3_matrix_factorisation": ("quick", dict(widths=[8], seeds=2, lr=19.2, steps=6000, n_records=60)),
    "cnn_fig2_digits": ("quick", dict(n=40, seeds=1, steps=60, init_scales=[1e-2, 1.0], widths=[8])),
    "four_phases": ("quick", dict(widths=[8], init_scales=[1e-2, 1e-4], seeds=2, n=[30], delta=[60, 120], t_max=500,
                                  n_records=30)),
    "phase_two_layer": ("quick", dict(widths=[16, 32], gammas=[0.25, 1.75], gamma_primes=[-0.5, 0.5], seeds=2, steps=2000,
                                      n=10)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(QUICK))
def test_every_figure_of_the_quick_specs_is_clean(name, tmp_path, monkeypatch):
    import condense_jax
    from condense_jax import kinds

    checked = {}
    save = figures.save

    def checking_save(fig, path):
        checked[str(path)] = figures.layout_problems(fig)
        return save(fig, path)

    monkeypatch.setattr(figures, "save", checking_save)
    monkeypatch.setattr(phase_plots, "save_figure", checking_save)
    variant, overrides = QUICK[name]
    spec, _ = kinds.load_spec(kinds.resolve_spec(name), variant)
    result = condense_jax.run(spec, tmp_path / name, overrides=overrides)
    assert result["figures"] and len(checked) == len(result["figures"])
    bad = {p: probs for p, probs in checked.items() if probs}
    assert not bad, bad
