"""The verifier's screen (NumPy over a fused group's records) proves what the record-by-record
check proves: on emitted plans and on plans corrupted word by word, verification with the
screen accepts exactly what it accepts without it, and rejects with the same message."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import fungrad as fg
from fungrad.errors import JitInternalError
from fungrad.jit.backend import isa
from fungrad.jit.backend import kernels_ew as KE
from fungrad.jit.passes import verify as V


def _parts(fn, *args):
    from fungrad.jit.compiled import _passes
    from fungrad.jit.tracer import trace

    program, _ = trace(fn, args, {})
    low, plan = _passes(program, frozenset(), frozenset())
    return program, low, plan


def _chain(x, w, b):
    for i in range(4):
        x = fg.tanh(x * w[i] + b[i])
    return fg.sum(x)


PROGRAMS = [
    ("tanh_scale", lambda x: fg.tanh(x) * 2.0, (np.ones(8),)),
    ("chain_grad", fg.value_and_grad(_chain, argnums=(1, 2)),
     (np.ones(16, np.float32), np.full((4, 16), 0.5, np.float32),
      np.zeros((4, 16), np.float32))),
    ("broadcast_mixed", lambda x, y: fg.sum(fg.exp(x[:, None] - y) * y.T.sum()),
     (np.linspace(0, 1, 5), np.ones((5, 3)))),
    ("matmul_group", lambda x, w: fg.sum(fg.tanh(x @ w) * x[0, 0]),
     (np.ones((3, 4)), np.ones((4, 4)))),
]


@pytest.fixture(autouse=True)
def _screen_every_group(monkeypatch):
    monkeypatch.setattr(V, "SCREEN_MIN", 0)  # (small groups are checked in order otherwise)


def _verdict(low, plan, program, screen: bool):
    """None if ``plan`` verifies, else the error's message."""
    real = V._Verifier.screen
    if not screen:
        V._Verifier.screen = lambda self, *a: None
    try:
        V.verify(low, plan, program)
        return None
    except JitInternalError as e:
        return str(e)
    finally:
        V._Verifier.screen = real


def _group_words(plan):
    """Positions of every word of every fused group's records."""
    code, out, pc = plan.code, [], 0
    while pc < len(code):
        length = code[pc + 1]
        if code[pc] == isa.EW:
            out.extend(range(pc + isa.HEAD, pc + length))
        pc += length
    return out


@pytest.mark.parametrize("name,fn,args", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_screen_passes_emitted_groups(name, fn, args, monkeypatch):
    program, low, plan = _parts(fn, *args)
    ran = []
    real = V._Verifier.records_in_order
    monkeypatch.setattr(V._Verifier, "records_in_order",
                        lambda self, *a: ran.append(a) or real(self, *a))
    words = V.verify(low, plan, program)
    assert ran == []  # every group proved by the screen
    np.testing.assert_array_equal(words, np.array(plan.code, np.int64))


@pytest.mark.parametrize("name,fn,args", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_screen_and_record_by_record_check_agree_on_corrupted_plans(name, fn, args):
    program, low, plan = _parts(fn, *args)
    assert _verdict(low, plan, program, True) is None
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    positions = _group_words(plan)
    rejected = 0
    for _ in range(250):
        q = positions[rng.integers(len(positions))]
        old = plan.code[q]
        plan.code[q] = int(rng.choice([old + 1, old - 1, -1, 0, 1, 2, 3, 7, old + 64,
                                       old * 3, -old, 1 << 41, -(1 << 62)]))
        want = _verdict(low, plan, program, False)
        assert _verdict(low, plan, program, True) == want, (q, old, plan.code[q])
        rejected += want is not None
        plan.code[q] = old
    assert rejected > 50  # (the corruptions do hit what the checks guard)


def test_a_corrupted_group_is_rejected_with_the_record_named():
    program, low, plan = _parts(lambda x: fg.exp(x) * 2.0, np.ones(8))
    mem = {slot for key, slot in plan.kernels.items() if key[0] in ("mem", "cast")}
    loads = [q for q in _group_words(plan)
             if (q - isa.HEAD) % isa.W == 0 and plan.code[q] in mem
             and plan.code[q + isa.MEM.sub] == KE.LOAD]
    plan.code[loads[0] + isa.MEM.buf] = len(plan.buffers)  # a buffer that does not exist
    with pytest.raises(JitInternalError, match=r"load: buffer \d+ of \d+.*verify"):
        V.verify(low, plan, program)


def test_a_long_group_is_screened_at_the_default_size(monkeypatch):
    monkeypatch.setattr(V, "SCREEN_MIN", 512)

    def chain(x):
        for _ in range(300):
            x = fg.tanh(x) * 2.0
        return x

    program, low, plan = _parts(chain, np.ones(8))
    assert plan.code[1] >= isa.HEAD + isa.W * 512  # (one fused group of 600 records and more)
    screened = []
    real = V._Verifier.screen
    monkeypatch.setattr(V._Verifier, "screen",
                        lambda self, *a: screened.append(real(self, *a)) or screened[-1])
    V.verify(low, plan, program)
    assert screened and all(s is not None for s in screened)
