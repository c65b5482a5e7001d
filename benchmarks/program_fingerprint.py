"""Fingerprints of fg.jit's traced Programs and compiled instruction arrays, to show that a change
to the tracer or the compiler leaves them as they were.

    cd <tree> && PYTHONPATH=$PWD python benchmarks/program_fingerprint.py OUT.json [n_fuzz]

Traces and compiles 14 hand-written programs (the benchmarks' tasks, the chain, an LSTM grad,
NumPy calls on traced arrays, a hessian, an object-style SGD step) and the jit fuzzer's first
``n_fuzz`` programs of seed 7 (through its eager/jit check), and writes, in order, a hash of
every Program traced (steps: function, op, name, inputs with constants' bytes, params,
outputs, flags; inputs, outputs, effects, guards) and of every ``plan.code``. Two trees give
byte-identical files when they trace and compile the same programs.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":  # (some guards come from a set: one order)
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
import warnings

sys.path.insert(0, os.path.join(os.getcwd(), "benchmarks"))
sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
os.environ.setdefault("FUNGRAD_JIT_CHECKS", "1")
import _steady_state  # noqa: E402,F401 (first: timed rounds run compiled code)
import numpy as np  # noqa: E402

import fungrad as fg  # noqa: E402
from fungrad.jit import api, compiled  # noqa: E402
from fungrad.jit.program import Binding, Var  # noqa: E402

out_path = sys.argv[1]; n_fuzz = int(sys.argv[2]) if len(sys.argv) > 2 else 0
records = []   # (label, program fp)
codes = []
current = ["?"]

def fn_id(f):
    t = type(f)
    inner = getattr(f, "fn", None)
    base = getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or t.__name__
    if t.__name__ in ("_FixedShape", "_Check"):
        return f"{t.__name__}({fn_id(f.fn)})"
    if t.__name__ == "_Draw":
        return f"_Draw({f.method},{f.args!r},{f.kwargs!r})"
    if isinstance(f, functools.partial):
        return f"partial({fn_id(f.func)},{len(f.args)})"
    return f"{getattr(f, '__module__', '')}.{base}" if not hasattr(f, "name") or t.__name__ != "Op" else f"op:{f.name}"

def ref(x, depth=0):
    if type(x) is Var:
        return ("v", x.id, tuple(x.shape), str(x.dtype), getattr(x.weak, "__name__", None))
    if isinstance(x, np.ndarray):
        return ("c", x.shape, str(x.dtype), hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()[:12])
    if isinstance(x, (tuple, list)):
        return (type(x).__name__, tuple(ref(v) for v in x))
    if isinstance(x, dict):
        return ("d", tuple((k, ref(v)) for k, v in x.items()))
    if isinstance(x, (int, float, bool, str, type(None), complex, np.generic, slice, type(Ellipsis))):
        return repr(x)
    if isinstance(x, np.dtype):
        return str(x)
    return type(x).__name__

def binding(b):
    if isinstance(b, Binding):
        return (b.kind, repr(b.key) if b.key is not None else None, type(b.obj).__name__ if b.obj is not None else None)
    return type(b).__name__

def prog_fp(p):
    h = hashlib.sha256()
    for v, b in p.inputs:
        h.update(repr((ref(v), binding(b))).encode())
    for s in p.steps:
        h.update(repr((s.name, fn_id(s.fn), s.op.name if s.op is not None else None, ref(s.inputs),
                       ref(s.params), ref(s.outputs), s.dynamic, s.multi, s.pure)).encode())
    h.update(repr([ref(o) for o in p.outputs]).encode())
    h.update(repr(p.out_kinds).encode())
    for e in p.effects:
        h.update(repr((e.kind, binding(e.target), ref(e.value) if hasattr(e, "value") else None)).encode())
    h.update(repr([g.what if hasattr(g, "what") else None for g in p.guards]).encode())
    h.update(repr(p.n_vars).encode())
    return h.hexdigest()[:16], len(p.steps)

orig_trace = api.trace
def traced(*a, **k):
    p, t = orig_trace(*a, **k)
    records.append((current[0], *prog_fp(p)))
    return p, t
api.trace = traced
orig_compile = compiled.compile_program
def comp(program, *a, **k):
    exe = orig_compile(program, *a, **k)
    plan = getattr(exe, "plan", None)
    if plan is not None:
        codes.append((current[0], hashlib.sha1(np.asarray(plan.code, np.int64).tobytes()).hexdigest()[:16], len(plan.code)))
    return exe
compiled.compile_program = comp

def run(label, f):
    current[0] = label
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f()
    except Exception as e:
        records.append((label, "EXC", f"{type(e).__name__}: {str(e)[:80]}"))

# -- hand-written programs
rng = np.random.default_rng(0)
def chain(layers):
    from trace_cost import make  # (the chain, one definition for the benchmarks)
    step, params = make(layers)
    step(params); step(params)
run("chain300", lambda: chain(300))
run("chain70_f64", lambda: chain(70))
from tasks import deep_chain, mlp, babi_rnn, embed_ce, lstm_char
def task(mod, maker, layers=None):
    def go():
        if layers: mod.LAYERS = layers
        impl = getattr(mod, maker)(mod.make_problem(0))
        impl.step(); impl.step(); impl.step()
        impl.grads()
    return go
run("deep_obj200", task(deep_chain, "fungrad_jit_step", 200))
run("deep_stacked200", task(deep_chain, "fungrad_jit_stacked_step", 200))
for m in (mlp, babi_rnn, embed_ce, lstm_char):
    run(m.__name__, task(m, "fungrad_jit_step"))
import jit_peers
def adam():
    s = jit_peers.mlp_adam()["fungrad_jit"]; s(); s(); s()
run("mlp_adam", adam)
def scan():
    s = jit_peers.scan_chain(300)["fungrad_jit"] if hasattr(jit_peers, "scan_chain") else None
    s(); s()
run("scan300", scan)
from jit_programs import lstm_loss
def lstm():
    T, B, I, H, O = 5, 3, 4, 6, 5
    P = {"Wx": rng.standard_normal((I, 4*H)), "Wh": rng.standard_normal((H, 4*H)),
         "b": np.zeros(4*H), "Wo": rng.standard_normal((H, O))}
    xs = rng.standard_normal((T, B, I)); ys = rng.integers(0, O, (T, B))
    g = fg.jit(fg.grad(lstm_loss))
    g(P, xs, ys); g(P, xs, ys)
run("lstm_grad", lstm)
def numpyish():
    @fg.jit
    def f(x, y):
        z = np.tanh(x) @ y.T + np.exp(-x[:, :3].sum(axis=1, keepdims=True))
        z = np.concatenate([z, z[::-1]], axis=0)
        z[0] += 1.0
        return np.maximum(z, 0).mean(axis=0), z.reshape(-1)[:5]
    f(rng.standard_normal((4, 5)), rng.standard_normal((6, 5)))
run("numpyish", numpyish)
def hessian():
    f = fg.jit(fg.hessian(lambda x: fg.sum(fg.sin(x) * x ** 2)))
    f(np.arange(3.0)); f(np.arange(3.0))
run("hessian", hessian)
def objsgd():
    from fungrad import Tensor
    from fungrad.optim import SGD
    w = Tensor(rng.standard_normal((5, 3)), autograd=True); b = Tensor(np.zeros(3), autograd=True)
    opt = SGD([w, b], alpha=0.1)
    x = rng.standard_normal((8, 5)); y = rng.standard_normal((8, 3))
    @fg.jit
    def step():
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward(); opt.step()
        return loss
    step(); step(); step()
run("objsgd", objsgd)

# -- fuzz programs
if n_fuzz:
    from jit_fuzz import generate
    from jit_fuzz.check import check
    for i in range(n_fuzz):
        prog = generate(7, i)
        current[0] = f"fuzz{i}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                o = check(prog)
            records.append((f"fuzz{i}", "outcome", o.status if hasattr(o, "status") else str(o)[:40]))
        except Exception as e:
            records.append((f"fuzz{i}", "EXC", type(e).__name__))
json.dump({"programs": records, "codes": codes}, open(out_path, "w"), indent=0)
print(len(records), "program records,", len(codes), "codes")
