"""Independent NumPy/SciPy reference integrations of the effective ODEs (no JAX, no condense_jax).

These integrate the *full* systems in physical time t with `scipy.integrate.solve_ivp` (DOP853) and
are the yardstick the engine is checked against:

* three-layer (3.10):  a' = b c,  b' = a cᵀ,  c' = bᵀ a;
* depth L gradient ascent of E = aᵀ W_{L-1} ⋯ W_2 c (any L ≥ 2);
* matrix sensing (A.8): a_i' = λ_i b c_i,  b' = Σ_i λ_i a_i c_iᵀ,  c_i' = λ_i bᵀ a_i
  (a has rows a_i, c has columns c_i).

Blow-up times come from a terminal event at ‖θ‖ = R ‖θ(0)‖ plus the exact tail of the balanced rank-one
state, T* − t = E^{−(L−2)/L}/(L−2); R is chosen so large that the tail is a negligible part of T*.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp


def _pack(params):
    return np.concatenate([np.ravel(p) for p in params])


def _unpack(y, shapes):
    out, i = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(y[i : i + n].reshape(s))
        i += n
    return out


# ---------------------------------------------------------------------------
# Right-hand sides, written out by hand


def three_layer_field(a, b, c):
    return b @ c, np.outer(a, c), b.T @ a


def deep_energy(params):
    a, *middle, c = params
    v = c
    for w in reversed(middle):
        v = w @ v
    return float(a @ v)


def deep_field(params):
    """∇E for E = aᵀ W_{L-1} ⋯ W_2 c: ∂E/∂W_k = (left row vector)ᵀ (right column vector)ᵀ."""
    a, *middle, c = params
    # right[k] = W_{k} ⋯ W_2 c applied from the bottom: right[0] = c, right[j] = middle[-j] @ right[j-1]
    right = [c]
    for w in reversed(middle):
        right.append(w @ right[-1])
    # left[j] = aᵀ W_{L-1} ⋯ (top j matrices), left[0] = a
    left = [a]
    for w in middle:
        left.append(w.T @ left[-1])
    n = len(middle)
    grads = [right[n]]  # ∂E/∂a = W_{L-1} ⋯ W_2 c
    for j in range(n):  # middle[j] sits between left[j] (above) and right[n-1-j] (below)
        grads.append(np.outer(left[j], right[n - 1 - j]))
    grads.append(left[n])  # ∂E/∂c = W_2ᵀ ⋯ W_{L-1}ᵀ a
    return grads


def sensing_energy(a, b, c, lam):
    return float(sum(lam[i] * a[i] @ b @ c[:, i] for i in range(len(lam))))


def sensing_field(a, b, c, lam):
    m = len(lam)
    da = np.stack([lam[i] * (b @ c[:, i]) for i in range(m)])  # rows
    db = sum(lam[i] * np.outer(a[i], c[:, i]) for i in range(m))
    dc = np.stack([lam[i] * (b.T @ a[i]) for i in range(m)], axis=1)  # columns
    return da, db, dc


# ---------------------------------------------------------------------------
# Integrations


def integrate(field, params, t_eval=None, t_end=None, stop_norm=None, rtol=1e-13, atol_rel=1e-15, max_t=None):
    """Integrate dθ/dt = field(θ) from `params` with DOP853.

    stop_norm: terminal event at ‖θ‖ = stop_norm. Returns the solve_ivp solution and the shapes.
    Tolerances: rtol, and atol = atol_rel·‖θ(0)‖.
    """
    shapes = [np.shape(p) for p in params]
    y0 = _pack(params)
    r0 = np.linalg.norm(y0)

    def rhs(_t, y):
        return _pack(field(*_unpack(y, shapes)))

    events = None
    if stop_norm is not None:

        def hit(_t, y):
            return np.dot(y, y) - stop_norm**2

        hit.terminal = True
        hit.direction = 1
        events = [hit]
    if t_end is None:
        t_end = t_eval[-1] if t_eval is not None else max_t
    sol = solve_ivp(
        rhs, (0.0, t_end), y0, method="DOP853", t_eval=t_eval, events=events,
        rtol=rtol, atol=atol_rel * r0, dense_output=False,
    )
    assert sol.status in (0, 1), sol.message
    return sol, shapes


def blowup_time(field, energy, params, depth, growth=1e6, max_t=1e6):
    """T* = t(‖θ‖ = growth·‖θ0‖) + E^{−(L−2)/L}/(L−2); also returns the tail's share of T*.

    field(*params) and energy(*params) take the unpacked parameter arrays; depth is L, or "sensing"
    (cubic energy, tail E^{−1/3} as for L = 3).
    """
    r0 = np.linalg.norm(_pack(params))
    sol, shapes = integrate(field, params, t_end=max_t, stop_norm=growth * r0)
    assert sol.status == 1 and len(sol.t_events[0]) == 1, "no blow-up reached before max_t"
    t_hit = sol.t_events[0][0]
    state = _unpack(sol.y_events[0][0], shapes)
    e = energy(*state)
    assert e > 0
    power = 1.0 / 3.0 if depth in (3, "sensing") else (depth - 2) / depth
    div = 1.0 if depth in (3, "sensing") else depth - 2
    tail = e ** (-power) / div
    return t_hit + tail, tail / (t_hit + tail)
