"""The benchmark's five tasks (benchmarks/tasks/) in the functional style a JAX user writes,
under ``fg.jit(step, donate_argnums=(0,))`` (issue 18, "Done when").

Each task is a params dict, a loss, ``fg.value_and_grad`` and the update
``{k: P[k] - lr * g[k]}``, at CI sizes. For each: several jitted steps with the parameters
donated equal the eager steps (float64, 1e-10), the jitted gradient equals a float64 eager
reference, and the float32 jitted steps stay within float32 accuracy of the float64 reference.
Each task runs in a sandbox child: a crash fails that task only.
"""

from __future__ import annotations

import numpy as np
import pytest

import fungrad as fg
from jit_fuzz.isolate import isolated

LR = 0.1
STEPS = 4


# -- the five models ---------------------------------------------------------------------------


def mlp_problem(rng):
    P = {"W1": rng.standard_normal((20, 12)) / np.sqrt(20), "b1": np.zeros(12),
         "W2": rng.standard_normal((12, 5)) / np.sqrt(12), "b2": np.zeros(5)}
    return P, (rng.standard_normal((16, 20)), rng.integers(0, 5, 16))


def mlp_loss(P, x, y):
    h = fg.tanh(x @ P["W1"] + P["b1"])
    return fg.cross_entropy(h @ P["W2"] + P["b2"], y)


def embed_ce_problem(rng):
    P = {"E": 0.1 * rng.standard_normal((60, 8)), "W": rng.standard_normal((8, 7)) / np.sqrt(8),
         "b": np.zeros(7)}
    p = 1.0 / np.arange(1, 61)
    ids = rng.choice(60, size=(12, 5), p=p / p.sum())  # Zipf-like: repeated ids are common
    return P, (ids, rng.integers(0, 7, 12))


def embed_ce_loss(P, ids, y):
    return fg.cross_entropy(fg.sum(fg.index_select(P["E"], ids), axis=1) @ P["W"] + P["b"], y)


def babi_rnn_problem(rng):
    V, D, H = 20, 8, 8

    def w(a, b):
        return rng.standard_normal((a, b)) * np.sqrt(2.0 / a)
    P = {"E": (rng.random((V, D)) - 0.5) / D, "W_ih": w(D, H), "b_ih": np.zeros(H),
         "W_hh": w(H, H), "b_hh": np.zeros(H), "W_ho": w(H, V), "b_ho": np.zeros(V)}
    return P, (rng.integers(0, V, (10, 6)),)


def babi_rnn_loss(P, ids):
    hidden = np.zeros((ids.shape[0], P["W_hh"].shape[0]))
    for t in range(ids.shape[1] - 1):
        x = fg.index_select(P["E"], ids[:, t])
        hidden = fg.sigmoid(x @ P["W_ih"] + P["b_ih"] + hidden @ P["W_hh"] + P["b_hh"])
    return fg.cross_entropy(hidden @ P["W_ho"] + P["b_ho"], ids[:, -1])


def lstm_char_problem(rng):
    V, D, H = 11, 6, 5
    k = 1.0 / np.sqrt(H)
    P = {"E": rng.standard_normal((V, D)), "W_ih": rng.uniform(-k, k, (D, 4 * H)),
         "W_hh": rng.uniform(-k, k, (H, 4 * H)), "b": rng.uniform(-k, k, 4 * H),
         "W_o": rng.uniform(-k, k, (H, V)), "b_o": np.zeros(V)}
    return P, (rng.integers(0, V, (7, 3)),)


def lstm_char_loss(P, ids):
    H = P["W_hh"].shape[0]
    h = c = np.zeros((ids.shape[1], H))
    losses = []
    for t in range(ids.shape[0] - 1):
        gates = fg.index_select(P["E"], ids[t]) @ P["W_ih"] + h @ P["W_hh"] + P["b"]
        i, f = fg.sigmoid(gates[:, :H]), fg.sigmoid(gates[:, H:2 * H])
        g, o = fg.tanh(gates[:, 2 * H:3 * H]), fg.sigmoid(gates[:, 3 * H:])
        c = f * c + i * g
        h = o * fg.tanh(c)
        losses.append(fg.cross_entropy(h @ P["W_o"] + P["b_o"], ids[t + 1]))
    return fg.mean(fg.stack(losses))


def deep_chain_problem(rng, layers=40):
    P = {}
    for i in range(layers):
        P[f"w{i:03d}"] = 1.0 + 0.1 * rng.standard_normal(8)
        P[f"b{i:03d}"] = 0.1 * rng.standard_normal(8)
    return P, (rng.standard_normal(8),)


def deep_chain_loss(P, x):
    for i in range(len(P) // 2):
        x = fg.tanh(x * P[f"w{i:03d}"] + P[f"b{i:03d}"])
    return fg.sum(x)


TASKS = {
    "mlp": (mlp_problem, mlp_loss),
    "embed_ce": (embed_ce_problem, embed_ce_loss),
    "babi_rnn": (babi_rnn_problem, babi_rnn_loss),
    "lstm_char": (lstm_char_problem, lstm_char_loss),
    "deep_chain": (deep_chain_problem, deep_chain_loss),
}


# -- the check -----------------------------------------------------------------------------------


def make_step(loss):
    def step(P, *data):
        value, g = fg.value_and_grad(loss)(P, *data)
        return value, {k: P[k] - LR * g[k] for k in P}
    return step


def _close(got, want, rtol, what):
    assert sorted(got) == sorted(want), f"{what}: keys {sorted(got)} vs {sorted(want)}"
    for k in want:
        g, w = np.asarray(got[k]), np.asarray(want[k])
        scale = max(float(np.abs(w).max(initial=0.0)), 1e-300)
        err = float(np.abs(g.astype(np.float64) - w).max(initial=0.0))
        assert err <= rtol * scale, (f"{what}[{k!r}]: max |jit - reference| = {err:.3g}, "
                                     f"{err / scale:.3g} of its scale (allowed {rtol:g})")


def check_task(name: str) -> None:
    make_problem, loss = TASKS[name]
    P0, data = make_problem(np.random.default_rng(0))
    step = make_step(loss)
    # the float64 eager reference: gradients and a chain of steps
    _, g_ref = fg.value_and_grad(loss)(P0, *data)
    ref = [P0]
    for _ in range(STEPS):
        ref.append(step(ref[-1], *data)[1])
    # the jitted gradient
    _, g_jit = fg.jit(fg.value_and_grad(loss))({k: v.copy() for k, v in P0.items()}, *data)
    _close(g_jit, g_ref, 1e-10, f"{name}: jitted gradient")
    # jitted steps, parameters donated, float64 then float32
    for dtype, rtol in ((np.float64, 1e-10), (np.float32, 2e-4)):
        jitted = fg.jit(step, donate_argnums=(0,))
        P = {k: v.astype(dtype) for k, v in P0.items()}
        cast = tuple(d.astype(dtype) if d.dtype.kind == "f" else d for d in data)
        for k in range(STEPS):
            value, P = jitted(P, *cast)
            assert all(np.asarray(v).dtype == dtype for v in P.values()), \
                f"{name}: {np.dtype(dtype).name} parameters came back as " \
                f"{sorted({np.asarray(v).dtype.name for v in P.values()})}"
            _close(P, ref[k + 1], rtol, f"{name} {np.dtype(dtype).name}: parameters after "
                                        f"jitted step {k + 1}")


def _mlp():
    check_task("mlp")


def _embed_ce():
    check_task("embed_ce")


def _babi_rnn():
    check_task("babi_rnn")


def _lstm_char():
    check_task("lstm_char")


def _deep_chain():
    check_task("deep_chain")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_under_jit_with_donation(name):
    isolated(globals()[f"_{name}"], timeout=240.0)
