"""The (L+1)-layer CNN of the CNN-condensation paper, section 3.2, as pure init/apply functions.

    x^[1]_{u,v,β} = Σ_α Σ_{p,q<m} x^[0]_{u+p,v+q,α} W^[1]_{p,q,α,β} + b^[1]_β
    x^[l]_{u,v,β} = Σ_α Σ_{p,q<m} σ(x^[l−1]_{u+p,v+q,α}) W^[l]_{p,q,α,β} + b^[l]_β     (l = 2 … L)
    f(x) = ⟨a, σ(x^[L])⟩ = Σ_{u,v,β} a_{u,v,β} σ(x^[L]_{u,v,β})

with m×m filters, 'valid' positions (u ≤ W_{l−1} − m, the χ(p, q) of (2)), images channels-last
(n, H, W, C). Init (3)–(4): W, b ~ N(0, β₁²) per conv layer, a ~ N(0, β₂²). Optionally a hidden
fully connected layer between σ(x^[L]) and the output (the paper's Fig. 3–4 networks), and d_out
outputs (10 logits for cross-entropy); the theory's network is L = 1, no hidden layer, d_out = 1.

Parameters: {"conv": [{"w": (m, m, C_{l−1}, C_l), "b": (C_l,)}, …], "fc": {"w", "b"} (optional),
"a": (D, d_out)}, where D = H_L·W_L·C_L (or the hidden width) and the flattening of σ(x^[L]) is
row-major over (u, v, β).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def output_hw(h: int, w: int, m: int, layers: int) -> tuple[int, int]:
    """Spatial size after `layers` valid m×m convolutions: (H − L(m−1), W − L(m−1))."""
    return h - layers * (m - 1), w - layers * (m - 1)


def init(key, in_shape: tuple[int, int, int], channels: tuple[int, ...], m: int, beta1, beta2,
         hidden: int | None = None, d_out: int = 1, dtype=jnp.float32) -> dict:
    """(3)–(4): conv weights and biases ~ N(0, β₁²) (β₁ a scalar or one value per conv layer), the
    hidden layer (if any) and the output weights a ~ N(0, β₂²)."""
    h, w, c0 = in_shape
    hl, wl = output_hw(h, w, m, len(channels))
    if hl < 1 or wl < 1:
        raise ValueError(f"{len(channels)} valid {m}×{m} convolutions do not fit a {h}×{w} image")
    b1 = jnp.broadcast_to(jnp.asarray(beta1, dtype), (len(channels),))
    keys = jax.random.split(key, 2 * len(channels) + 3)
    conv, c_in = [], c0
    for layer, c_out in enumerate(channels):
        kw, kb = keys[2 * layer], keys[2 * layer + 1]
        conv.append({"w": b1[layer] * jax.random.normal(kw, (m, m, c_in, c_out), dtype),
                     "b": b1[layer] * jax.random.normal(kb, (c_out,), dtype)})
        c_in = c_out
    params = {"conv": conv}
    features = hl * wl * channels[-1]
    if hidden is not None:
        params["fc"] = {"w": beta2 * jax.random.normal(keys[-3], (features, hidden), dtype),
                        "b": beta2 * jax.random.normal(keys[-2], (hidden,), dtype)}
        features = hidden
    params["a"] = beta2 * jax.random.normal(keys[-1], (features, d_out), dtype)
    return params


def patches(x, m: int):
    """The m×m windows of x (n, H, W, C) at the valid positions: (n, H−m+1, W−m+1, C·m²), features
    ordered (α, p, q) (XLA's patch order)."""
    return jax.lax.conv_general_dilated_patches(x, (m, m), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv_layer(x, w, b):
    """Σ_α Σ_{p,q} x_{u+p,v+q,α} W_{p,q,α,β} + b_β at the valid positions (a cross-correlation),
    as windows × kernels: one matrix product, which vmaps over runs as a batched product (a
    vmapped `conv_general_dilated` becomes a grouped convolution, several times slower on CPU)."""
    m, _, c_in, c_out = w.shape
    kernel = jnp.transpose(w, (2, 0, 1, 3)).reshape(c_in * m * m, c_out)  # rows (α, p, q)
    return patches(x, m) @ kernel + b


def features(params: dict, x, act):
    """σ(x^[L]) flattened per sample (n, H_L·W_L·C_L), through the hidden layer if there is one."""
    h = conv_layer(x, params["conv"][0]["w"], params["conv"][0]["b"])
    for layer in params["conv"][1:]:
        h = conv_layer(act(h), layer["w"], layer["b"])
    out = act(h).reshape(h.shape[0], -1)
    if "fc" in params:
        out = act(out @ params["fc"]["w"] + params["fc"]["b"])
    return out


def apply(params: dict, x, act):
    """f(x) = ⟨a, σ(x^[L])⟩ for every image of x (n, H, W, C): (n, d_out)."""
    return features(params, x, act) @ params["a"]


def kernels(params: dict, layer: int = 0):
    """The vectorised kernels W^[l]_{·,·,α,β} of a conv layer, one row per (α, β): (C_{l−1}·C_l, m²)."""
    w = params["conv"][layer]["w"]
    m, _, c_in, c_out = w.shape
    return jnp.transpose(w, (2, 3, 0, 1)).reshape(c_in * c_out, m * m)


def kernel_vectors(params: dict, layer: int = 0, with_bias: bool = True):
    """θ_{W,β} = (vec W_{·,·,·,β}, b_β) of each output channel β, as rows (C_l, C_{l−1}·m² + 1): the
    vectors of (9)–(15), in the column order of cnn_theory.z_matrix ((p, q, α), then the bias)."""
    w, b = params["conv"][layer]["w"], params["conv"][layer]["b"]
    m, _, c_in, c_out = w.shape
    rows = jnp.transpose(w, (3, 0, 1, 2)).reshape(c_out, m * m * c_in)
    return jnp.concatenate([rows, b[:, None]], 1) if with_bias else rows


def mse(pred, y):
    """R_S = (1/2n) Σ_i ‖f(x_i) − y_i‖² (1)."""
    return 0.5 * jnp.mean(jnp.sum((pred.reshape(len(y), -1) - y.reshape(len(y), -1)) ** 2, -1))


def cross_entropy(logits, labels):
    """Softmax cross-entropy with integer labels, averaged over samples."""
    logp = jax.nn.log_softmax(logits, -1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], -1))


def two_layer_value_and_grad(params: dict, windows, y, act_name: str):
    """R_S (1) and its gradient for the two-layer CNN (one conv layer, no hidden layer, one output)
    with the forward and backward pass written out, given the input's windows (n, Q, C·m²) (fixed:
    `patches` of the data, computed once). Equals jax.value_and_grad of mse(apply(·)) up to rounding.

        z = P K + b,  h = σ(z),  f = Σ_{q,β} a_{qβ} h_{qβ},  r = (f − y)/n,
        ∂a = Σ_i r_i h_i,  δ = r a σ'(z),  ∂K = Σ_{i,q} P_{iq}ᵀ δ_{iq},  ∂b = Σ_{i,q} δ_{iq}
    """
    from .activations import get

    act, deriv = get(act_name).fn, get(act_name).derivative_of_output
    w, b = params["conv"][0]["w"], params["conv"][0]["b"]
    m, _, c_in, c_out = w.shape
    kernel = jnp.transpose(w, (2, 0, 1, 3)).reshape(c_in * m * m, c_out)  # rows (α, p, q): XLA's patch order
    n, q_pos, _ = windows.shape
    h = act(jnp.einsum("nqd,dc->nqc", windows, kernel) + b)
    a = params["a"][:, 0].reshape(q_pos, c_out)
    err = jnp.einsum("nqc,qc->n", h, a) - y
    loss = 0.5 * jnp.mean(err * err)
    r = err / n
    delta = r[:, None, None] * a[None]
    if deriv is not None:
        delta = delta * deriv(h)
    g_kernel = jnp.einsum("nqd,nqc->dc", windows, delta)
    g_w = jnp.transpose(g_kernel.reshape(c_in, m, m, c_out), (1, 2, 0, 3))
    grads = {"conv": [{"w": g_w, "b": jnp.sum(delta, (0, 1))}],
             "a": jnp.einsum("n,nqc->qc", r, h).reshape(-1, 1)}
    return loss, grads
