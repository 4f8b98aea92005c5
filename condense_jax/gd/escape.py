"""Predicted plateau escape of gradient descent from small initialisation (host code).

For the three-layer network (3.1) f = aᵀσ(W²σ(W¹x)) at init scale ε, with θ = ε θ̄ and σ smooth,
σ(0) = 0, σ(z) = σ'(0) z + O(z²):

    f(x) = ε³ σ'(0)² āᵀ W̄² W̄¹ x + O(ε⁴)          (each of the two σ contributes one σ'(0)),
    R_S(θ) = (1/2n) Σ y_i² − (1/n) Σ y_i f(x_i) + (1/2n) Σ f(x_i)²
           = (1/2n) Σ y_i² − ε³ κ E(θ̄) + o(ε³),    (3.4)
    κ = σ'(0)² ‖Σ y_i x_i‖ / n,  E(θ̄) = āᵀ W̄² W̄¹ v  (3.7), (3.8).

Gradient flow dθ/dt = −∇_θ R_S with ∇_θ = ε⁻¹ ∇_θ̄ gives ε dθ̄/dt = ε² κ ∇_θ̄ E (3.5), so in the time
t̄ = ε κ t (below (3.5)) the normalised weights follow the effective ODE (3.6)/(3.10) with
a = ā, b = W̄², c = W̄¹ v. Gradient descent with learning rate η is t = η · step, hence

    predicted escape step = T* / (ε κ η),

T* the blow-up time of (3.10) from (a/ε, W²/ε, W¹v/ε) (blowup.solve_three_layer). This κ is
`data.effective_rate`.

What "escape" means here: T* is where the leading-order model blows up, i.e. where the weights in
original units, θ ≈ 1/(κ (t_* − t)) near the blow-up (t_* = T*/(εκ)), stop being small. That profile
does not depend on ε, so under gradient flow the loss reaches a fixed fraction of its initial value
a fixed O(1/κ) time from t_*: O(1/(κη)) steps. Gradient descent is forward Euler with step εκη in
the effective time on a flow that blows up like s' = s², which costs about ln(growth of s) ≈ ln(1/ε)
extra steps whatever η. So measured − predicted ≈ ln(1/ε) + O(1) steps, a relative gap of order
ε ln(1/ε) (tests/test_escape.py measures it).

Assumes plain gradient descent with a constant learning rate (no lr drops, not Adam).
"""

from __future__ import annotations

import warnings

import numpy as np

from .data import effective_rate, target_direction
from .models import activations


def predicted_escape(params0, scale, x, y, activation: str, lr: float, options=None) -> dict:
    """T* of the effective ODE from each run's normalised start and the predicted escape step.

    params0: three-layer initial parameters, a batch (dict a (B, m), w2 (B, m, m), w1 (B, m, d),
        as a vmapped train's `params0` flattened to one batch axis) or one run (a (m,), ...);
        any float dtype, computed in float64.
    scale: the init scale ε, scalar or (B,).
    x (n, d), y (n,): the training data (with the input bias column if the run had one).
    activation: the activation's name (models/activations.py); lr: the (constant) GD learning rate.
    options: blowup.SolverOptions (None: its defaults).

    Returns a dict of (B,) arrays: `t_star` (blowup's: inf for a start that does not blow up, NaN on
    failure), `predicted_step` = T*/(ε κ lr) (NaN unless status is "blowup"), `kappa`
    (σ'(0)²‖Σ yᵢxᵢ‖/n), `status` (blowup's status, or "not_applicable" with everything NaN, and one
    warning, when σ does not qualify for the effective model, e.g. ReLU).
    """
    a = np.asarray(params0["a"], dtype=np.float64)
    w2 = np.asarray(params0["w2"], dtype=np.float64)
    w1 = np.asarray(params0["w1"], dtype=np.float64)
    if a.ndim == 1:
        a, w2, w1 = a[None], w2[None], w1[None]
    if a.ndim != 2 or w2.ndim != 3 or w1.ndim != 3:
        raise ValueError(f"params0 must be a (B, m), w2 (B, m, m), w1 (B, m, d); got {a.shape}, {w2.shape}, {w1.shape}")
    batch = a.shape[0]
    eps = np.broadcast_to(np.asarray(scale, dtype=np.float64), (batch,))
    if not np.all(np.isfinite(eps) & (eps > 0)):
        raise ValueError(f"scale must be positive and finite, got {scale!r}")
    lr = float(lr)
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    x = np.asarray(x, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    y = np.asarray(y, dtype=np.float64)

    nan = np.full(batch, np.nan)
    act = activations.get(activation)
    if not act.effective_ok:
        warnings.warn(
            f"activation {activation!r} is not smooth with σ'(0) ≠ 0 at 0 (σ'(0) = {act.slope0}, smooth = {act.smooth}): "
            "the small-ε expansion (3.4) and the effective model (3.6) do not apply, so no escape step is predicted (NaN)",
            stacklevel=2,
        )
        return {"t_star": nan, "predicted_step": nan.copy(), "kappa": nan.copy(),
                "status": np.full(batch, "not_applicable", dtype=object)}

    from ..ode import blowup  # float64 JAX and the solver, only when there is something to solve

    v = target_direction(x, y)
    kappa = effective_rate(x, y, act.slope0)
    ea = eps[:, None]
    start_a = a / ea
    start_b = w2 / ea[:, :, None]
    start_c = np.einsum("bij,j->bi", w1, v) / ea
    res = blowup.solve_three_layer(start_a, start_b, start_c, options if options is not None else blowup.SolverOptions())
    t_star = np.asarray(res.runs["t_star"], dtype=np.float64)
    status = np.asarray(res.runs["status"], dtype=object)
    step = np.where(status == "blowup", t_star / (eps * kappa * lr), np.nan)
    return {"t_star": t_star, "predicted_step": step, "kappa": np.full(batch, kappa), "status": status}
