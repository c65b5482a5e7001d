"""The registry's unary ops that are smooth on [-1, 1] (a Real domain covering it, no points to
avoid): what the generated loop bodies and checkpointed blocks are made of, read from the
registry so that ops added later take part."""

from __future__ import annotations

import fungrad as fg
from fungrad.domains import Real


def _smooth(op) -> bool:
    spec = op.domain.spec(0) if op.n_inputs == 1 else None
    return (op.domain.kind == "elementwise" and op.differentiable == (True,)
            and type(spec) is Real and spec.low <= -1 and spec.high >= 1 and not spec.avoid)


SMOOTH = sorted(name for name, op in fg.ops().items() if _smooth(op))
