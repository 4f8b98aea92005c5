"""The data dictionary of a four-phase sweep's tables (engine/columns.py says how it is used).
The phase boundaries come from a heuristic detector (detect.py, thresholds in the spec), not a
theorem; the dictionary says so wherever a column is one of its outputs."""

from __future__ import annotations

from ..engine.columns import Column as C

T = "t (flow time)"
DETECTOR = "heuristic detector, four_phases/detect.py"

RUNS = {
    "run_id": C("index of the run in the sweep (joins every table)", "", "engine"),
    "width": C("number of hidden ReLU neurons m", "", "spec"),
    "n": C("number of training samples", "count", "spec"),
    "delta": C("angle Δ between the class centres x₊, x₋ asked for (angled data)", "degrees", "four_phases/data.py"),
    "init_scale": C("init scale ε", "", "spec"),
    "seed": C("seed of the initial weights", "", "spec"),
    "log_inv_eps": C("log(1/ε), the axis of the fits", "", "four_phases/sweep.py"),
    "class_angle": C("angle between the class-mean directions of the data", "degrees", "four_phases/data.py"),
    "status": C("finished, diverged, converged (loss threshold) or solver_failed (gradient flow)", "", "engine/freeze.py",
                ("finished", "converged", "diverged", "solver_failed")),
    "stop_time": C("time at which the run stopped (frozen or at t_max)", T, "four_phases/dynamics.py"),
    "stop_step": C("integrator step at which the run stopped", "GD steps", "four_phases/dynamics.py"),
    "final_loss": C("loss at the last record", "", "four_phases/dynamics.py"),
    "final_accuracy": C("training accuracy at the last record", "", "four_phases/dynamics.py"),
    "final_margin": C("normalised margin minᵢ yᵢf(xᵢ)/‖θ‖² at the last record", "", "Lyu & Li 2020"),
    "final_stable_rank": C("stable rank ‖W‖²_F/‖W‖²₂ at the last record", "", "Min et al."),
    "frac_s_plus": C("share of neurons in S₊ (active exactly on the positives) at the last record", "", "Min et al."),
    "frac_s_minus": C("share of neurons in S₋ (active exactly on the negatives) at the last record", "", "Min et al."),
    "frac_dead": C("share of neurons active on no sample at the last record", "", "four_phases/dynamics.py"),
    "t_I_II": C("end of condensation: every live neuron within cos_tol of its sign group's direction, before the drop", T, DETECTOR),
    "t_II_III": C("start of the plateau: first record after the first steep fall with slope ≥ −plateau_slope", T, DETECTOR),
    "t_III_IV": C("start of convergence: from here on every sample is right and −d log L/d log t stays in conv_band", T, DETECTOR),
    "t_escape": C("last activation-pattern change before the loss falls again after the plateau", T, DETECTOR),
    "t_plateau_end": C("first record after the plateau with slope ≤ −steep_slope", T, DETECTOR),
    "t_drop": C("first record with loss ≤ (1 − drop_tol) × initial loss: the run leaves the saddle", T, DETECTOR),
    "plateau_loss": C("loss at t_II_III", "", DETECTOR),
    "empty_group": C("a sign group had no live neuron before the drop (phase I cannot be judged)", "", DETECTOR),
    "phase_I": C("phase I (initial condensation) detected", "", DETECTOR),
    "phase_II": C("phase II (saddle to plateau) detected", "", DETECTOR),
    "phase_III": C("phase III (plateau escape) detected", "", DETECTOR),
    "phase_IV": C("phase IV (convergence) detected", "", DETECTOR),
    "phases": C("the detected phases joined by + (e.g. I+II+IV), or none", "", DETECTOR),
}

SERIES = {
    "run_id": RUNS["run_id"],
    "t": C("time of the record (log-spaced grid)", T, "four_phases/dynamics.py"),
    "loss": C("logistic (or exponential) loss", "", "four_phases/dynamics.py"),
    "accuracy": C("training accuracy", "", "four_phases/dynamics.py"),
    "margin": C("normalised margin minᵢ yᵢf(xᵢ)/‖θ‖²", "", "Lyu & Li 2020"),
    "param_norm": C("‖θ‖", "", "four_phases/dynamics.py"),
    "live": C("neurons active on at least one sample", "count", "four_phases/dynamics.py"),
    "dead": C("neurons active on no sample", "count", "four_phases/dynamics.py"),
    "active": C("active (neuron, sample) pairs", "count", "four_phases/dynamics.py"),
    "pattern_changes": C("(neuron, sample) pairs whose activation changed since the previous record", "count", "four_phases/dynamics.py"),
    "in_s_plus": C("neurons in S₊ (active exactly on the positives)", "count", "Min et al."),
    "in_s_minus": C("neurons in S₋ (active exactly on the negatives)", "count", "Min et al."),
    "stable_rank": C("‖W‖²_F/‖W‖²₂", "", "Min et al."),
    "align_pos": C("min cos of the live neurons with a_k > 0 with x₊ (NaN: no such neuron)", "", "Min et al."),
    "align_neg": C("min cos of the live neurons with a_k < 0 with x₋ (NaN: no such neuron)", "", "Min et al."),
    "cond_pos": C("min cos of the live neurons with a_k > 0 with their own mean direction (NaN: none)", "", "four_phases/dynamics.py"),
    "cond_neg": C("min cos of the live neurons with a_k < 0 with their own mean direction (NaN: none)", "", "four_phases/dynamics.py"),
    "max_neuron_norm": C("max_k ‖(w_k, a_k)‖", "", "four_phases/dynamics.py"),
}

NEURONS = {
    "run_id": RUNS["run_id"],
    "t": SERIES["t"],
    "neuron": C("index k of the neuron", "", "four_phases/sweep.py"),
    "norm": C("‖w_k‖", "", "four_phases/dynamics.py"),
    "a": C("output weight a_k", "", "four_phases/dynamics.py"),
    "cos_pos": C("cos(w_k, x₊)", "", "four_phases/dynamics.py"),
    "cos_neg": C("cos(w_k, x₋)", "", "four_phases/dynamics.py"),
    "u": C("coordinate of w_k along x₊ in the plane of (x₊, x₋)", "", "four_phases/dynamics.py"),
    "v": C("coordinate of w_k along the unit vector of x₋ orthogonal to x₊", "", "four_phases/dynamics.py"),
}

COLUMNS = {"runs": RUNS, "series": SERIES, "neurons": NEURONS}
