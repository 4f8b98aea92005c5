"""Skip the plateau (issue #20): hand a run from its leading-order dynamics to full gradient descent.

Three-layer network (3.1), f(x) = aᵀσ(W²σ(W¹x)), σ odd with s₁ = σ'(0) ≠ 0 (tanh, the sigmoid
shifted so σ(0) = 0, identity). With θ = O(ε), σ(W¹x) = s₁W¹x + O(ε³) and

    f(x) = s₁² aᵀW²W¹x + O(ε⁵),    R_S(θ) = R₀ − κ aᵀW²W¹v + O(ε⁵)             (3.4)

with z = (1/n) Σ yᵢxᵢ, v = z/‖z‖ and κ = s₁²‖z‖ (3.7) (the project's R_S = (1/2n) Σ (f − y)²;
κ = `data.effective_rate`). One GD step of size η on this truncated loss, all from the old values:

    a ← a + ηκ W²c,   W² ← W² + ηκ a cᵀ,   W¹ ← W¹ + ηκ (W²ᵀa) vᵀ   (c = W¹v)

so c ← c + ηκ W²ᵀa and W¹(I − vvᵀ) never moves: the full weights are W¹ = W¹(0)(I − vvᵀ) + c vᵀ at
every step. In the normalised variables y = (ā, b̄, c̄) = (a, W², c)/ε this is forward Euler with
step h = ηκε on the effective field (3.10)

    F(y) = (b̄c̄, āc̄ᵀ, b̄ᵀā),

which is homogeneous quadratic. The neglected terms are O(ε²) relative to the kept ones while
‖θ‖ = O(ε) and O(‖θ‖²) as the weights grow (odd σ: σ''(0) = 0), so the map is the leading order of
GD for the run's own step size. Its cost is O(1/ε) steps; instead, `effective_three_layer`
integrates the *modified equation* of that Euler map (Hairer, Lubich & Wanner, Geometric Numerical
Integration, IX.1): the flow of

    F̃ = F − (h/2) F'F + h² ((1/3) F'F'F + (1/12) F''(F, F)),    F''(F, F) = 2 F(F) (F quadratic)

follows the map's iterates to O(h³) per unit time, with an adaptive solver (Diffrax Tsit5) whose
work does not grow as ε falls. A step k is the time τ = k h. The flow alone (F̃ = F) would be off
by O(h) relative, the 0.956 of GD's escape over the flow's prediction at ε = 1e-2.

Handover rule (`fast_forward_norm` δ): the first step k_h at which the network's largest
pre-activation or output on the training data, to leading order,

    u = max(|W¹xᵢ|, s₁|W²W¹xᵢ|, s₁²|aᵀW²W¹xᵢ|)   over i and units,  W¹xᵢ = W¹(0)(I − vvᵀ)xᵢ + c (v·xᵢ),

reaches δ (default 0.1: where σ starts to bend, tanh(u) = u(1 − u²/3 + …)), and never after the
first learning-rate drop or the last step. There the weights are rebuilt, a = εā, W² = εb̄,
W¹ = W¹(0)(I − vvᵀ) + εc̄vᵀ, and full GD takes over. The neglected terms are then O(δ²) relative
(odd σ; the loss's f² term O(δ)); k_h carries the map's O(h³) error and the root-find's
tolerance. A run that starts with u ≥ δ is not fast-forwarded (k_h = 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

RK4_SUBSTEPS = 4  # fixed RK4 steps over the last part-step (|Δτ| < h) from the event to the step k_h h


def field(y):
    """The effective vector field (3.10) in normalised variables y = (ā, b̄, c̄)."""
    a, b, c = y
    return (b @ c, jnp.outer(a, c), b.T @ a)


def modified_field(y, h):
    """F̃ = F − (h/2) F'F + h² ((1/3) F'F'F + (1/12) F''(F, F)): the modified equation of forward
    Euler with step h on F (its flow equals h-steps of Euler to O(h³) per unit time)."""
    f = field(y)
    jf = jax.jvp(field, (y,), (f,))[1]  # F'F
    jjf = jax.jvp(field, (y,), (jf,))[1]  # F'F'F
    ff = field(f)  # F''(F, F) = 2 F(F) for a homogeneous quadratic F
    return jax.tree_util.tree_map(lambda f0, f1, f2, f3: f0 - 0.5 * h * f1 + h * h * (f2 / 3 + f3 / 6), f, jf, jjf, ff)


def euler_map(y, h):
    """One step of GD on the truncated loss, in normalised variables: y + h F(y)."""
    return jax.tree_util.tree_map(lambda u, du: u + h * du, y, field(y))


def _rk4(y, dt, h, n: int = RK4_SUBSTEPS):
    """n classical RK4 steps of the modified flow over a (short, possibly negative) time dt."""
    g = lambda u: modified_field(u, h)
    axpy = lambda u, s, du: jax.tree_util.tree_map(lambda p, q: p + s * q, u, du)
    step = dt / n

    def one(_, u):
        k1 = g(u)
        k2 = g(axpy(u, step / 2, k1))
        k3 = g(axpy(u, step / 2, k2))
        k4 = g(axpy(u, step, k3))
        return jax.tree_util.tree_map(lambda p, q1, q2, q3, q4: p + step / 6 * (q1 + 2 * q2 + 2 * q3 + q4), u, k1, k2, k3, k4)

    return jax.lax.fori_loop(0, n, one, y)


def largest_signal(y, eps, w1_perp, x, v, s1):
    """u of the handover rule (module doc) at the normalised state y: the largest |pre-activation|
    of both hidden layers and |output| over the data x (n, d), to leading order in θ."""
    a, b, c = y
    p1 = x @ w1_perp.T + jnp.outer(x @ v, eps * c)  # W¹xᵢ (n, m)
    p2 = s1 * p1 @ (eps * b).T  # W²σ(W¹xᵢ)
    out = s1 * p2 @ (eps * a)  # aᵀσ(W²σ(W¹xᵢ))
    return jnp.maximum(jnp.maximum(jnp.max(jnp.abs(p1)), jnp.max(jnp.abs(p2))), jnp.max(jnp.abs(out)))


def effective_three_layer(params0, eps, v, kappa, lr, last_step, record_steps, delta: float, x, s1):
    """The leading-order phase of one three-layer run (module doc), up to its handover step.

    params0: the run's initial weights {a (m,), w2 (m, m), w1 (m, d)}; eps: its ε; v: the target
    direction (d,); kappa: κ; lr: the run's GD step size (constant up to last_step); last_step: the
    latest step the handover may take (the first lr drop, or the last step); record_steps (K,):
    the steps recorded; delta: the handover level δ; x (n, d): the training inputs; s1: σ'(0).

    Returns (k_h, params at k_h, params at every record step (K, …): valid where step ≤ k_h).
    """
    import diffrax
    import optimistix as optx

    # the run's own precision (its spec's dtype), never the process's: a float32 run gets the same bits
    # whether or not 64-bit mode is on (the effective ODE, or a test session, switches it on)
    out_dtype = dtype = params0["a"].dtype
    a0, w2, w1 = (params0[k].astype(dtype) for k in ("a", "w2", "w1"))
    eps, v, x = jnp.asarray(eps, dtype), jnp.asarray(v, dtype), jnp.asarray(x, dtype)
    y0 = (a0 / eps, w2 / eps, (w1 @ v) / eps)
    h = jnp.asarray(lr * kappa * eps, dtype)
    w1_perp = w1 - jnp.outer(w1 @ v, v)
    signal = lambda y: largest_signal(y, eps, w1_perp, x, v, s1)
    t_last = last_step * h
    # every run must end on an event whose condition starts negative (vmapped runs all root-find):
    # its signal reaching δ, or the time t_last + h; a run that starts at u ≥ δ (k_h = 0) stops at t = h
    above = signal(y0) >= delta
    level = jnp.where(above, jnp.inf, delta)
    t_stop = jnp.where(above, h, t_last + h)
    t1 = t_last + 2 * h
    ts = jnp.minimum(jnp.asarray(record_steps, dtype) * h, t_last)
    tight = jnp.finfo(dtype).eps ** 0.5 if dtype == jnp.float64 else 1e-6
    # the condition in JAX's default float (exact for float32 values): diffrax pairs it with a Python
    # 0.0 in a lax.cond, which is float64 when 64-bit mode is on
    event = diffrax.Event(lambda t, y, args, **kw: jnp.maximum(signal(y) - level, t - t_stop).astype(jnp.zeros(()).dtype),
                          root_finder=optx.Bisection(rtol=tight, atol=tight))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: modified_field(y, h)), diffrax.Tsit5(), jnp.zeros((), dtype), t1, None, y0,
        saveat=diffrax.SaveAt(ts=ts, t1=True), stepsize_controller=diffrax.PIDController(rtol=tight * 1e-1 if dtype == jnp.float64 else 1e-6,
                                                                                           atol=1e-9 if dtype == jnp.float64 else 1e-6),
        event=event, max_steps=16384, throw=False)
    reached = jnp.isfinite(sol.ts)
    last = jnp.sum(reached) - 1  # the event state is saved at the first slot after the reached records
    tau_c = sol.ts[last]
    y_c = jax.tree_util.tree_map(lambda u: u[last], sol.ys)
    k_h = jnp.minimum(jnp.floor(tau_c / h), last_step)  # the time trigger gives last_step
    k_h = jnp.where(above, 0, jnp.clip(k_h, 0, last_step)).astype(jnp.int32)
    y_h = _rk4(y_c, k_h * h - tau_c, h)
    y_h = jax.tree_util.tree_map(lambda u, u0: jnp.where(k_h == 0, u0, u), y_h, y0)

    def rebuild(y):
        a, b, c = y
        return {"a": (eps * a).astype(out_dtype), "w2": (eps * b).astype(out_dtype),
                "w1": (w1_perp + eps * jnp.outer(c, v)).astype(out_dtype)}

    records = jax.vmap(rebuild)(jax.tree_util.tree_map(lambda u: u[: len(record_steps)], sol.ys))
    records = jax.tree_util.tree_map(lambda r, p: jnp.where(jnp.isfinite(r), r, p), records,
                                     jax.tree_util.tree_map(lambda p: jnp.broadcast_to(p, (len(record_steps), *p.shape)), params0))
    return k_h, rebuild(y_h), records


def _paired_handover(plus, minus, g, delta: float, last_step):
    """The closed form shared by the two-layer network and the CNN, and its handover step.

    Pairs (x, y) of modes j with [x; y] ← [[1, gⱼ], [gⱼ, 1]] [x; y] per step (gⱼ < 1) have
    x ± y = (1 ± gⱼ)^k (x ± y)(0): `state(k)` returns (x(k), y(k)) from plus = (x + y)(0) and
    minus = (x − y)(0), both (modes, …), g (modes, 1). k_h is the first step at which ‖(x, y)‖
    reaches δ: ‖·‖² = ½ Σⱼ ((1 + gⱼ)^{2k}‖plusⱼ‖² + (1 − gⱼ)^{2k}‖minusⱼ‖²) is a sum of
    exponentials in k, convex, so {k : ‖·‖ ≥ δ} is [k_h, ∞); a bisection finds it below an upper
    end where one mode's growing part alone reaches δ², capped at last_step.
    """
    dtype = plus.dtype
    lg_plus, lg_minus = jnp.log1p(g), jnp.log1p(-jnp.minimum(g, 1 - 1e-6))
    d2 = jnp.asarray(delta * delta, dtype)

    def state(k):
        k = jnp.asarray(k, dtype)
        up, um = plus * jnp.exp(k * lg_plus), minus * jnp.exp(k * lg_minus)
        return (up + um) / 2, (up - um) / 2

    def norm2(k):
        x, y = state(k)
        return jnp.sum(x * x) + jnp.sum(y * y)

    size = jnp.maximum(jnp.sum(plus.reshape(len(plus), -1) ** 2, 1), jnp.finfo(dtype).tiny)
    grows = lg_plus[:, 0] > 0  # a mode with g = 0 (a zero singular value) never grows
    hi = jnp.min(jnp.where(grows, jnp.ceil(jnp.log(2 * d2 / size) / (2 * jnp.where(grows, lg_plus[:, 0], 1))), jnp.inf))
    hi = jnp.clip(hi, 0, last_step).astype(jnp.int32)

    def bisect(_, lo_hi):
        lo, up = lo_hi  # norm2(lo) < δ² ≤ norm2(up) (or up = the cap)
        mid = (lo + up) // 2
        reach = norm2(mid) >= d2
        return jnp.where(reach, lo, mid), jnp.where(reach, mid, up)

    _, k_h = jax.lax.fori_loop(0, 40, bisect, (jnp.int32(0), hi))
    k_h = jnp.where(norm2(0) >= d2, 0, jnp.where(norm2(hi) >= d2, k_h, hi)).astype(jnp.int32)
    return state, k_h


def effective_two_layer(params0, v, lam, lr, last_step, record_steps, delta: float):
    """The leading-order phase of one two-layer run, in closed form.

    f(x) = (1/α) Σₖ aₖσ(wₖ·x), σ odd with s₁ = σ'(0): R_S = R₀ − (s₁/α) Σₖ aₖ (wₖ·z) + O(ε⁴), so with
    pₖ = wₖ·v and λ = s₁‖z‖/α (`lam`) one GD step of size η on the truncated loss is

        [aₖ; pₖ] ← [[1, ηλ], [ηλ, 1]] [aₖ; pₖ],    wₖ(I − vvᵀ) never moves,

    and after k steps aₖ ± pₖ = (1 ± ηλ)^k (aₖ(0) ± pₖ(0)): exact for the truncated loss, O(m) for
    any k. Handover: the first step k_h at which ‖(a, Wv)‖ reaches δ (`delta`); ‖(a, Wv)‖² is a
    sum of two exponentials in k, convex, so {k : ‖·‖ ≥ δ} is [k_h, ∞) and a bisection finds it.

    Returns (k_h, params at k_h, params at every record step (K, …): valid where step ≤ k_h).
    """
    a0, w0 = params0["a"], params0["w"]
    dtype = a0.dtype
    p0 = w0 @ v
    # one mode: all neurons grow at ηλ (< 1: the map is a contraction along a − p)
    state, k_h = _paired_handover((a0 + p0)[None], (a0 - p0)[None], jnp.asarray(lr * lam, dtype).reshape(1, 1),
                                  delta, last_step)

    def rebuild(k):
        a, p = (t[0] for t in state(k))
        return {"a": a.astype(dtype), "w": (w0 - jnp.outer(p0, v) + jnp.outer(p, v)).astype(dtype)}

    records = jax.vmap(rebuild)(jnp.minimum(jnp.asarray(record_steps), k_h))
    return k_h, rebuild(k_h), records


def cnn_z(x, y, m: int):
    """Z of the CNN paper's (9)–(10) in the column order of the model's kernels (XLA's patch order
    (α, p, q), then the bias): Z = (1/n) Σᵢ yᵢ [windows(xᵢ), 1], one row per output position."""
    import numpy as np

    from .models import cnn

    x = np.asarray(x, np.float64)
    windows = np.asarray(cnn.patches(jnp.asarray(x), m)).reshape(len(x), -1, x.shape[-1] * m * m)
    w = np.asarray(y, np.float64) @ windows.reshape(len(x), -1) / len(x)
    return np.concatenate([w.reshape(windows.shape[1], -1), np.full((windows.shape[1], 1), np.mean(y))], 1)


def effective_cnn(params0, z_svd, s1, lr, last_step, record_steps, delta: float):
    """The leading-order phase of one two-layer CNN run (one conv layer, MSE), in closed form.

    f(x) = Σ_{q,β} a_{qβ} σ(θ_β·[window_q(x), 1]) with θ_β = (kernel of channel β, b_β): to leading
    order R_S = R₀ − s₁ Σ_β a_βᵀ Z θ_β (CNN paper (9)–(10); Z = `cnn_z`), so one GD step of size η is

        a_β ← a_β + ηs₁ Z θ_β,    θ_β ← θ_β + ηs₁ Zᵀ a_β,

    a linear map whose block [[0, Z], [Zᵀ, 0]] has eigenvalues ±sⱼ (Z = U S Vᵀ): with
    αⱼ = uⱼᵀa_β, ϑⱼ = vⱼᵀθ_β, after k steps αⱼ ± ϑⱼ = (1 ± ηs₁sⱼ)^k (αⱼ ± ϑⱼ)(0), and the parts of a_β
    and θ_β outside U's and V's ranges never move. Handover: the first step k_h at which the moving
    part's norm ‖(Uᵀa, Vᵀθ)‖ over every channel reaches δ (a sum of exponentials in k, convex, so a
    bisection finds it), capped at last_step.

    z_svd: (U (Q, r), s (r,), Vt (r, F)) of Z. Returns (k_h, params at k_h, params at every record).
    """
    u, s, vt = (jnp.asarray(t, params0["a"].dtype) for t in z_svd)
    conv = params0["conv"][0]
    w0, b0, a0 = conv["w"], conv["b"], params0["a"]
    m, _, c_in, c_out = w0.shape
    kernel0 = jnp.transpose(w0, (2, 0, 1, 3)).reshape(c_in * m * m, c_out)  # rows (α, p, q)
    theta0 = jnp.concatenate([kernel0, b0[None, :]], 0)  # (F, C_out): θ_β as columns
    a_mat0 = a0.reshape(-1, c_out)  # (Q, C_out): a_β as columns (features ordered (u, v, β))
    alpha0, vartheta0 = u.T @ a_mat0, vt @ theta0  # (r, C_out)
    dtype = a0.dtype
    # one mode per singular pair, growing at ηs₁sⱼ
    moving, k_h = _paired_handover(alpha0 + vartheta0, alpha0 - vartheta0, jnp.asarray(lr * s1 * s[:, None], dtype),
                                   delta, last_step)

    def rebuild(k):
        al, th = moving(k)
        a_mat = a_mat0 + u @ (al - alpha0)
        theta = theta0 + vt.T @ (th - vartheta0)
        w = theta[:-1].reshape(c_in, m, m, c_out).transpose(1, 2, 0, 3)
        return {**params0, "conv": [{"w": w.astype(dtype), "b": theta[-1].astype(dtype)}], "a": a_mat.reshape(a0.shape).astype(dtype)}

    records = jax.vmap(rebuild)(jnp.minimum(jnp.asarray(record_steps), k_h))
    return k_h, rebuild(k_h), records
