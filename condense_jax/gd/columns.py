"""The data dictionary of a training sweep's tables and of the phase table (engine/columns.py says
how it is used). (3.x) are equations of the three-layer paper, (A.x) its appendix on deep linear
networks, "CNN (n)" the CNN-condensation paper, "Luo et al." the two-layer phase-diagram paper."""

from __future__ import annotations

from ..engine.columns import Column as C

STEPS = "GD steps"
NORMALISED = "units of ε"

GRID = {
    "run_id": C("index of the run in the sweep (joins every table)", "", "engine"),
    "width": C("width m (hidden units; channels for the CNN)", "", "spec"),
    "seed": C("seed of the initial weights (the same directions at every scale)", "", "spec"),
    "scale": C("init scale ε", "", "(3.3)"),
    "scale_exponent": C("γ when ε = m^(−γ) (--scale-exponents), else empty", "", "spec"),
    "gamma": C("phase-diagram coordinate γ = −log(β₁β₂/α)/log m (two-layer)", "", "Luo et al."),
    "gamma_prime": C("phase-diagram coordinate γ′ = −log(β₂/β₁)/log m (two-layer)", "", "Luo et al."),
    "alpha": C("output normalisation α of the two-layer network (1/α) Σ a_k σ(w_k·x)", "", "Luo et al."),
    "beta1": C("std β₁ of the input weights w_k", "", "Luo et al."),
    "beta2": C("std β₂ of the output weights a_k", "", "Luo et al."),
    "layer_offset": C("index into layer_exponents of the run's per-layer exponents (three-layer grid)", "", "spec"),
    "exp_a": C("exponent of a: std = m^(−γ_a)", "", "gd/sweep.py"),
    "exp_w2": C("exponent of W²: std = m^(−γ₂)", "", "gd/sweep.py"),
    "exp_w1": C("exponent of W¹: std = m^(−γ₁)", "", "gd/sweep.py"),
}

SETTINGS = {
    "model": C("network: three-layer, two-layer, deep-linear or cnn", "", "spec"),
    "activation": C("activation σ", "", "spec"),
    "optimizer": C("gd or adam", "", "spec"),
    "lr": C("learning rate η asked for", "", "spec"),
    "lr_run": C("step size the run took: min(lr, lr_ntk/K₀) with lr_ntk, else lr", "", "gd/train.py"),
    "steps": C("step budget", STEPS, "spec"),
    "n": C("number of training samples", "count", "spec"),
    "d": C("input dimension (with the bias coordinate)", "", "gd/data.py"),
    "bias": C("a constant 1 appended to every input", "", "spec"),
    "loss_threshold": C("a run stops (converged) when its loss falls below this", "", "spec"),
    "escape_fraction": C("escape_step is the first step with loss ≤ this × the initial loss", "", "spec"),
}

OUTCOME = {
    "status": C("finished (ran its steps), converged (reached loss_threshold) or diverged (non-finite loss, or above diverge_factor × initial)", "", "engine/freeze.py",
                ("finished", "converged", "diverged")),
    "stop_step": C("step at which the run stopped (frozen or at its budget)", STEPS, "gd/train.py"),
    "loss_initial": C("loss at step 0", "", "gd/train.py"),
    "loss_final": C("loss at stop_step", "", "gd/train.py"),
    "escape_step": C("first step with loss ≤ escape_fraction × loss_initial (empty if never)", STEPS, "gd/train.py"),
    "max_pos_sum": C("maximum over all steps of Fig. 2's sum #{i: cᵢaᵀbⁱ > 0} + #{i: aᵢbᵢc > 0} (of 2m)", "count", "Fig. 2, Assumption 2"),
    "full_hold_step": C("first record at which Assumption 2 fully holds (empty if never)", STEPS, "Assumption 2"),
    "t_star": C("T* of the effective ODE from the run's normalised start (a/ε, W²/ε, W¹v/ε)", "t (flow time)", "(3.10)"),
    "kappa": C("κ = σ′(0)²‖Σᵢ yᵢxᵢ‖/n", "", "(3.7)"),
    "fast_forward_step": C("--fast-forward: the handover step k_h, the first at which the leading-order largest pre-activation "
                           "or output reached fast_forward_norm (0: GD from the start)", STEPS, "gd/fast_forward.py"),
    "predicted_escape_step": C("T*/(ε κ η) in GD steps of the run's rate schedule (three-layer, gd)", STEPS, "(3.8), gd/escape.py"),
}

# series quantities (the runs table has their value at the last record too)
MEASURES = {
    "loss": C("training loss (MSE ½·mean, or cross-entropy)", "", "(3.2)"),
    "rd_*": C("relative distance ‖θ(t) − θ(0)‖/‖θ(0)‖ of one layer (a, w, w1, w2, w3, conv1, …)", "", "Luo et al.; CNN (14)"),
    "energy": C("E = aᵀW²W¹v/ε³ (three-layer); ⟨W, V⟩/ε³ (deep-linear)", "", "(3.11); (A.9)"),
    "norm_a": C("‖a‖/ε", NORMALISED, "(3.9)"),
    "norm_w": C("‖W‖_F/ε of the input weights (two-layer)", NORMALISED, "gd/metrics.py"),
    "norm_w1": C("‖W¹‖_F/ε", NORMALISED, "(3.9)"),
    "norm_w2": C("‖W²‖_F/ε (= ‖b‖)", NORMALISED, "(3.9)"),
    "norm_c": C("‖W¹v‖/ε (= ‖c‖)", NORMALISED, "(3.9)"),
    "a2_in": C("#i with c_i aᵀbⁱ > 0 (Assumption 2 (1), of m)", "count", "Assumption 2"),
    "a2_out": C("#i with a_i b_i c > 0 (Assumption 2 (1), of m)", "count", "Assumption 2"),
    "a2_pos_sum": C("a2_in + a2_out, Fig. 2's sum of positive numbers (of 2m)", "count", "Fig. 2"),
    "a2_in_pairs": C("#(i, j) with ⟨c_i bⁱ, c_j bʲ⟩ > 0 (Assumption 2 (2), of m²)", "count", "Assumption 2"),
    "a2_out_pairs": C("#(i, j) with ⟨a_i b_i, a_j b_j⟩ > 0 (Assumption 2 (2), of m²)", "count", "Assumption 2"),
    "a2_holds": C("Assumption 2 holds: every count equals its total", "", "Assumption 2"),
    "cos_v_w1": C("mean over W¹'s rows of |cos(w_i, v)|, v the target direction", "", "(3.7)"),
    "cos_v_w": C("mean over the input weights w_k of |cos(w_k, v)|", "", "(3.7)"),
    "n_dir_*": C("distinct directions among a layer's rows (|cos| ≥ cos_threshold are one)", "count", "gd/metrics.py"),
    "sv_*": C("k-th largest singular value of W = W³W²W¹", "", "(A.1)"),
    "a4_in": C("#(i, j) with λ_i c_{i,j} a_iᵀbʲ > 0 (Assumption 4 (1), of a4_first_total)", "count", "Assumption 4"),
    "a4_out": C("#(i, j) with λ_i a_{i,j} b_j c_i > 0 (Assumption 4 (1), of a4_first_total)", "count", "Assumption 4"),
    "a4_in_pairs": C("#(i, j, k) with ⟨c_{i,k}bᵏ, c_{i,j}bʲ⟩ > 0 (Assumption 4 (2), of a4_pairs_total)", "count", "Assumption 4"),
    "a4_out_pairs": C("#(i, j, k) with ⟨a_{i,k}b_k, a_{i,j}b_j⟩ > 0 (Assumption 4 (2), of a4_pairs_total)", "count", "Assumption 4"),
    "a4_cross": C("#(i, j, k, l) with λ_iλ_j a_{i,k}a_{j,k}c_{i,l}c_{j,l} > 0 (Assumption 4 (3))", "count", "Assumption 4"),
    "a4_active": C("n_λ, the number of nonzero singular values of the target", "count", "Assumption 4"),
    "a4_first_total": C("n_λ·m, the total of a4_in and a4_out", "count", "Assumption 4"),
    "a4_pairs_total": C("n_λ·m², the total of the pair counts", "count", "Assumption 4"),
    "a4_cross_total": C("n_λ²·m², the total of a4_cross", "count", "Assumption 4"),
    "a4_holds": C("Assumption 4 holds: every count equals its total and n_λ ≥ 1", "", "Assumption 4"),
    "accuracy": C("training accuracy of the CNN", "", "gd/train.py"),
    "amplitude": C("mean kernel amplitude ‖θ_β‖/ε, θ_β = (vec W_β, b_β)", NORMALISED, "CNN §4"),
    "cos_v1": C("mean over kernels of |cos(θ_β, v₁)|, v₁ the top singular vector of Z", "", "CNN (9)–(10)"),
    "share_v1": C("share of kernels with |cos(θ_β, v₁)| > cos_threshold", "", "CNN §4"),
    "v1_share": C("‖θ_{W,v₁}‖/‖θ_W‖", "", "CNN (15)"),
}

SERIES = {"run_id": GRID["run_id"], "step": C("GD step of the record", STEPS, "gd/train.py"), **MEASURES,
          "effective": C("--fast-forward: this record is the leading-order dynamics' (step ≤ fast_forward_step), "
                         "not a GD iterate", "", "gd/fast_forward.py")}
RUNS = {**GRID, **SETTINGS, **OUTCOME, **{k: v for k, v in MEASURES.items() if k != "loss"}}  # loss: loss_final
COSINES = {
    "run_id": GRID["run_id"],
    "step": SERIES["step"],
    "layer": C("w1, w2 or w (row cosines); conv1 (kernels θ_β); kernels_conv1 (per kernel: signed cos with v₁, ‖θ_β‖/ε); convN", "", "gd/metrics.py"),
    "width": C("side of the matrix (rows)", "", "gd/sweep.py"),
    "cos": C("cosine-similarity matrix D(w_i, w_j) of the layer's rows, as a list of rows", "", "CNN (5)"),
}
PHASE = {
    "gamma": GRID["gamma"],
    "gamma_prime": GRID["gamma_prime"],
    "exp_w1": GRID["exp_w1"],
    "exp_w2": GRID["exp_w2"],
    "n_runs": C("runs at this grid point", "count", "phase_diagram/fit.py"),
    "n_used": C("runs that reached the end of training (finished or converged)", "count", "phase_diagram/fit.py"),
    "n_diverged": C("runs that diverged", "count", "phase_diagram/fit.py"),
    "slope_*": C("width slope S = −d log RD/d log m (RD ∝ m^(−S)): mean over seeds of each seed's least-squares slope", "", "Luo et al.; phase_diagram/fit.py"),
    "stderr_*": C("standard error of S over seeds (one seed: the OLS standard error)", "", "phase_diagram/fit.py"),
    "n_seeds_*": C("seeds with a slope (≥ 2 widths)", "count", "phase_diagram/fit.py"),
    "n_widths_*": C("widths used in the fit", "count", "phase_diagram/fit.py"),
    "regime_*": C("linear (S > 0), condensed (S < 0), critical (|S| ≤ k·stderr + tol) or undetermined", "", "Luo et al.",
                  ("linear", "critical", "condensed", "undetermined")),
    "regime_theory": C("the regime Luo et al.'s theorem gives at (γ, γ′) (two-layer)", "", "Luo et al.",
                       ("linear", "critical", "condensed")),
    "width_max": C("largest width with a usable run", "", "phase_diagram/fit.py"),
    "cos_v_*": C("mean of the runs' cos_v_* at width_max", "", "gd/metrics.py"),
    "n_dir_*": C("mean of the runs' n_dir_* at width_max", "count", "gd/metrics.py"),
}

COLUMNS = {"runs": RUNS, "series": SERIES, "cosines": COSINES}
ALL = {**COLUMNS, "phase/phase_table": PHASE}  # phase/: written by `condense phase` (and run / plot of a phase spec)
