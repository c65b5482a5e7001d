"""Optimizer hyperparameter checks and the reading of optimizer state dicts.

An optimizer's state dict is a flat ``{name: ndarray}`` (so that ``fg.save`` writes it):

    num_parameters            0-d int: len(opt.parameters) when it was made
    hparams.<name>            0-d float: lr, momentum, beta1, beta2, eps, weight_decay
    state.<i>.<name>          parameter i's state array (its shape and dtype)
    state.<i>.step            0-d int >= 1: parameter i's step count (Adam)

:func:`parse_state` checks a whole dict against an optimizer and its parameters and reports
every problem at once, naming each key, before anything is changed.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from ..errors import CheckpointError
from ..tensor import Tensor

_RULES = {
    "alpha": "must be >= 0", "lr": "must be >= 0", "momentum": "must be >= 0",
    "eps": "must be >= 0", "weight_decay": "must be >= 0", "max_norm": "must be >= 0",
    "dampening": "must be >= 0",
    "beta1": "must be in [0, 1)", "beta2": "must be in [0, 1)",
}
_STATE_KEY = re.compile(r"state\.(\d+)\.(\w+)\Z")
_MAX_LISTED = 8


def check_hparams(name: str, values: Mapping[str, Any]) -> dict[str, float]:
    """Hyperparameters as floats, each checked against its rule; raises naming the first bad.

    >>> check_hparams("SGD", {"lr": 0.1, "momentum": 0})
    {'lr': 0.1, 'momentum': 0.0}
    """
    out = {}
    for key, val in values.items():
        try:
            x = float(val)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: {key} must be a number, got {val!r}") from None
        ok = 0.0 <= x < 1.0 if key.startswith("beta") else x >= 0.0
        if not ok:
            raise ValueError(f"{name}: {key} {_RULES.get(key, 'is invalid')}, got {val}")
        out[key] = x
    return out


def parse_state(opt: Any, params: list[Tensor], state: Any
                ) -> tuple[dict[str, float], dict[int, tuple[int, dict[str, np.ndarray]]]]:
    """Check ``state`` against ``opt``: ``(hyperparameters, {position: (steps, arrays)})``.

    The arrays are copies. Raises :class:`CheckpointError` listing every bad key.
    """
    name = f"{opt._name}.load_state_dict"
    if not isinstance(state, Mapping):
        raise TypeError(f"{name}: expected a mapping of names to arrays (what state_dict() or "
                        f"fg.load returns), got {type(state).__name__}")
    problems: list[str] = []
    hp: dict[str, float] = {}
    found: dict[int, dict[str, np.ndarray]] = {}
    wanted_hp = list(opt._hparams())
    per_param = opt._STATE + (("step",) if opt._EXPORT_STEP else ())
    count_seen = False
    for key, raw in state.items():
        arr = _array(raw)
        if key == "num_parameters":
            count_seen = True
            if not _is_int_scalar(arr) or int(arr) != len(params):
                problems.append(f"'num_parameters' is {_show(arr)}, but the optimizer has "
                                f"{len(params)} parameters")
        elif isinstance(key, str) and key.startswith("hparams."):
            _read_hparam(name, key, arr, wanted_hp, hp, problems)
        elif isinstance(key, str) and (match := _STATE_KEY.match(key)) is not None:
            i_text, sname = match.groups()
            i = int(i_text)
            if sname not in per_param:
                problems.append(f"unexpected key '{key}' ({opt._name} keeps "
                                f"{', '.join(per_param) or 'no per-parameter state'})")
            elif i >= len(params):
                problems.append(f"'{key}' is for parameter {i}, but the optimizer has "
                                f"{len(params)} parameters")
            elif _check_state_array(key, sname, arr, params[i], problems):
                found.setdefault(i, {})[sname] = arr
        else:
            problems.append(f"unexpected key {key!r}")
    if not count_seen:
        problems.append("missing key 'num_parameters'")
    problems += [f"missing key 'hparams.{k}'" for k in wanted_hp if k not in hp]
    entries = {}
    for i, arrays in sorted(found.items()):
        absent = [s for s in per_param if s not in arrays]
        if absent:
            problems += [f"missing key 'state.{i}.{s}' (the state of parameter {i} is "
                         "incomplete)" for s in absent]
            continue
        step = int(arrays.pop("step")) if opt._EXPORT_STEP else 1
        entries[i] = (step, {k: np.array(a, copy=True) for k, a in arrays.items()})
    if problems:
        raise CheckpointError(_message(name, problems, state))
    return hp, entries


def _array(raw: Any) -> np.ndarray:
    return np.asarray(raw.data if isinstance(raw, Tensor) else raw)


def _is_int_scalar(arr: np.ndarray) -> bool:
    return arr.ndim == 0 and arr.dtype.kind in "iu"


def _show(arr: np.ndarray) -> str:
    return repr(arr.item()) if arr.ndim == 0 and arr.dtype.kind in "biuf" else (
        f"an array of shape {arr.shape} and dtype {arr.dtype}")


def _read_hparam(name: str, key: str, arr: np.ndarray, wanted: list[str],
                 hp: dict[str, float], problems: list[str]) -> None:
    hname = key[len("hparams."):]
    if hname not in wanted:
        problems.append(f"unexpected key '{key}' (hyperparameters: {', '.join(wanted)})")
    elif arr.ndim != 0 or arr.dtype.kind not in "iuf":
        problems.append(f"'{key}' is {_show(arr)}; expected a 0-d number")
    else:
        try:
            hp[hname] = check_hparams(name, {hname: arr.item()})[hname]
        except (TypeError, ValueError) as e:
            problems.append(f"'{key}': {str(e).split(': ', 1)[1]}")


def _check_state_array(key: str, sname: str, arr: np.ndarray, p: Tensor,
                       problems: list[str]) -> bool:
    if sname == "step":
        if not _is_int_scalar(arr) or int(arr) < 1:
            problems.append(f"'{key}' is {_show(arr)}; expected a 0-d integer >= 1")
            return False
        return True
    if arr.shape != p.shape:
        problems.append(f"'{key}' has shape {arr.shape}, the parameter has shape {p.shape}")
        return False
    if arr.dtype != p.dtype:
        problems.append(f"'{key}' has dtype {arr.dtype}, the parameter has dtype {p.dtype} "
                        "(convert it with .astype)")
        return False
    return True


def _message(name: str, problems: list[str], state: Mapping) -> str:
    listed = problems[:_MAX_LISTED]
    more = len(problems) - len(listed)
    text = "; ".join(listed) + (f"; and {more} more" if more > 0 else "")
    hint = ""
    if not any(isinstance(k, str) and (k.startswith(("state.", "hparams.")) or
                                      k == "num_parameters") for k in state):
        hint = (" (this looks like a model's state dict: load it with "
                "model.load_state_dict)")
    return (f"{name}: the state does not match this optimizer (nothing was loaded){hint}: "
            f"{text}")
