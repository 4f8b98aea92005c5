"""The data dictionary of an ODE sweep's tables (engine/columns.py says how it is used).
Equation numbers are those of the three-layer condensation paper (../shared/papers)."""

from __future__ import annotations

from ..engine.columns import Column as C

T = "t (flow time)"
TAU = "τ (projective time)"

RUNS = {
    "run_id": C("index of the run in the sweep (joins every table)", "", "engine"),
    "init_index": C("row of the --init file the start came from (empty for random starts)", "", "ode/starts.py"),
    "seed": C("seed of the random start (empty for --init starts)", "", "ode/sweep.py"),
    "width": C("width m of the effective system (a, c ∈ ℝᵐ, b ∈ ℝᵐˣᵐ)", "", "(3.9)"),
    "depth": C("depth of the network the effective ODE comes from (3 = the paper's)", "", "(3.10), (A.1)"),
    "scale_a": C("init scale of a (std of its entries)", "", "ode/sweep.py"),
    "scale_b": C("init scale of b", "", "ode/sweep.py"),
    "scale_c": C("init scale of c", "", "ode/sweep.py"),
    "E0": C("energy E = aᵀbc at t = 0", "", "(3.11)"),
    "t_star": C("blow-up time T* (+inf when there is none)", T, "(3.10), blowup.py"),
    "t_star_thm1_bound": C("Theorem 1's upper bound E₀^(−1/3), when E₀ > 0", T, "Theorem 1, (3.15)"),
    "t_final_stage": C("first recorded time from which Assumption 2 holds (Prop. 2: then until T*)", T, "Assumption 2, Prop. 2"),
    "status": C("what the solve found: blowup, no_blowup, max_steps or nonfinite", "", "blowup.py",
                ("blowup", "no_blowup", "max_steps", "nonfinite")),
    "theory_status": C("what a theorem decides before the solve: blowup, no_blowup or open", "", "Theorem 1, (3.13); Example 1",
                       ("blowup", "no_blowup", "open")),
    "assumption1": C("Assumption 1 holds at t = 0: ‖a(0)‖ ≠ ‖c(0)‖ and K ≠ 0, to 64 ulps", "", "Assumption 1, (3.12)–(3.13)"),
    "frac_diverging": C("share of indices i with c_i → ±∞ (the class C₁) at the last record", "", "Prop. 3"),
    "min_cos_xi": C("min cos ξ_ij over C₁ at the last record (→ 1)", "", "Prop. 3, (4.4)"),
    "adot_over_a2": C("‖ȧ‖/‖a‖² at the last record (→ 1)", "", "Prop. 3, (4.5)"),
    "b_top_share": C("σ₁(b)²/‖b‖²_F at the last record (→ 1: b becomes rank one)", "", "Prop. 3"),
    "tau_end": C("projective time at which the solve stopped", TAU, "blowup.py"),
    "num_steps": C("integrator steps the solve took", "count", "blowup.py"),
    "growth_log": C("log ‖θ‖ at the last record, ‖θ‖² = ‖a‖² + ‖b‖²_F + ‖c‖²", "", "blowup.py"),
}

SERIES = {
    "run_id": RUNS["run_id"],
    "tau": C("projective time of the record", TAU, "blowup.py"),
    "t": C("flow time of the record", T, "(3.10)"),
    "t_target": C("the --series-t time this record was asked for", T, "ode/sweep.py"),
    "energy": C("E = aᵀbc", "", "(3.11)"),
    "norm_a2": C("‖a‖²", "", "(3.9)"),
    "norm_b2": C("‖b‖²_F", "", "(3.9)"),
    "norm_c2": C("‖c‖²", "", "(3.9)"),
    "cos_zeta": C("cos ζ, the angle between a and ȧ", "", "Theorem 2"),
    "thm2_rate": C("Theorem 2's constant C(t) = (4/3)(cos ζ)^(−4/3)", "", "Theorem 2"),
    "a2_out": C("#i with a_i b_i c > 0 (Assumption 2 (1), out of m)", "count", "Assumption 2"),
    "a2_in": C("#i with c_i aᵀbⁱ > 0 (Assumption 2 (1), out of m)", "count", "Assumption 2"),
    "a2_out_pairs": C("#(i, j) with ⟨a_i b_i, a_j b_j⟩ > 0 (Assumption 2 (2), out of m²; --pair-counts)", "count", "Assumption 2"),
    "a2_in_pairs": C("#(i, j) with ⟨c_i bⁱ, c_j bʲ⟩ > 0 (Assumption 2 (2), out of m²; --pair-counts)", "count", "Assumption 2"),
    "final_stage": C("Assumption 2 holds at this record", "", "Assumption 2"),
    "tstar_lower": C("proved lower bound of T*: t + √3/‖θ(t)‖", T, "(3.11) and AM–GM; theory.norm_running_lower"),
    "tstar_upper": C("proved upper bound of T*: t + E^(−1/3) where E(t) > 0", T, "Theorem 1 from t, (3.15)"),
    "tstar_thm2_estimate": C("estimate (not a bound) t + E^(−1/3)/C(t) once the final stage holds", T, "Theorem 2"),
}

COLUMNS = {"runs": RUNS, "series": SERIES}
