"""The public surface documents itself (issue 12 item 2, issue 9 item 6): every op presents its
own name, signature and docstring to ``help`` and ``inspect``; every public function, class and
method has a docstring, and the Python-level API has type hints."""

from __future__ import annotations

import importlib
import inspect
import pydoc

import pytest

import fungrad as fg
from fungrad.registry import Op

# modules whose __all__ is public API; fungrad.numpy mirrors NumPy's untyped signatures, so
# it is held to docstrings but not to type hints
TYPED = ["fungrad", "fungrad.nn", "fungrad.optim", "fungrad.testing", "fungrad.tree",
         "fungrad.misc", "fungrad.misc.optimizers", "fungrad.errors", "fungrad.io",
         "fungrad.random", "fungrad.distributed", "fungrad.jit"]
UNTYPED = ["fungrad.numpy", "fungrad.numpy.linalg"]


def _public(module_name: str) -> list[tuple[str, object]]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return [(f"{module_name}.{n}", getattr(module, n)) for n in names if hasattr(module, n)]


def _documented(obj) -> bool:
    doc = inspect.getdoc(obj)
    return bool(doc and doc.strip())


def _functions_and_methods(qualname: str, obj):
    if inspect.ismodule(obj) or isinstance(obj, Op):
        return
    if inspect.isclass(obj):
        yield qualname, obj
        for name, member in vars(obj).items():
            if name.startswith("_") and name not in ("__call__", "__init__"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                member = member.fget
            if inspect.isfunction(member):
                yield f"{qualname}.{name}", member
    elif inspect.isfunction(obj):
        yield qualname, obj


def _undocumented(modules) -> list[str]:
    missing = []
    for module_name in modules:
        for qualname, obj in _public(module_name):
            for name, member in _functions_and_methods(qualname, obj):
                if name.endswith(".__init__"):
                    continue  # the class docstring documents construction
                if not _documented(member):
                    missing.append(name)
    return sorted(set(missing))


def test_every_public_function_class_and_method_has_a_docstring():
    missing = _undocumented(TYPED + UNTYPED)
    assert not missing, f"{len(missing)} public objects without a docstring: {missing}"


def _untyped(fn) -> list[str]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    bad = [p.name for p in sig.parameters.values()
           if p.name not in ("self", "cls") and p.annotation is p.empty
           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if sig.return_annotation is sig.empty and fn.__name__ != "__init__":
        bad.append("return")
    return bad


def test_the_python_level_api_has_type_hints():
    missing = []
    for module_name in TYPED:
        for qualname, obj in _public(module_name):
            for name, member in _functions_and_methods(qualname, obj):
                if inspect.isclass(member) or name.rsplit(".", 1)[-1].startswith("__"):
                    continue
                bad = _untyped(member)
                if bad:
                    missing.append(f"{name} ({', '.join(bad)})")
    assert not missing, f"{len(missing)} public functions lack type hints: {sorted(missing)}"


BUILTIN_OPS = sorted(name for name, op in fg.ops().items() if op.builtin)


@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_every_builtin_op_presents_its_own_signature_and_docstring(name):
    op = fg.ops()[name]
    assert inspect.isroutine(op)
    sig = inspect.signature(op)
    assert "args" not in sig.parameters and "params" not in sig.parameters, sig
    doc = inspect.getdoc(op)
    assert not doc.startswith(f"The op '{name}'"), f"op '{name}' has no description of its own"
    text = pydoc.render_doc(op, renderer=pydoc.plaintext)
    assert f"{name}{sig}" in text and doc.splitlines()[0] in text


def test_a_defop_op_presents_its_signature_and_doc_to_help():
    from fungrad.testing import temporary_ops

    with temporary_ops():
        def scaled(x, y, *, scale=1.0):
            """scale * x * y, elementwise."""
            return scale * x * y

        op = fg.defop("api_scaled", scaled, lambda g, out, x, y, scale=1.0: (g * y * scale,
                                                                               g * x * scale))
        assert str(inspect.signature(op)) == "(x, y, /, *, scale=1.0)"
        text = pydoc.render_doc(op, renderer=pydoc.plaintext)
        assert "api_scaled(x, y, /, *, scale=1.0)" in text and "elementwise" in text
        assert op.__name__ == "api_scaled"


def test_help_fungrad_gives_an_overview():
    text = pydoc.render_doc(fg, renderer=pydoc.plaintext)
    for topic in ("Tensor", "grad", "nn", "optim", "testing", "fungrad.numpy"):
        assert topic in text


def test_numpy_namespace_imports_as_hips_autograd_users_write_them():
    # import autograd.numpy.random as npr, and tab completion without our helper imports
    import numpy as np

    import fungrad.numpy as fnp
    import fungrad.numpy.random as npr

    assert npr is np.random and fnp.random is np.random
    assert set(dir(fnp)) <= set(dir(np)) | set(fnp.__all__)
    assert "plain" not in dir(fnp.linalg) and "norm" in dir(fnp.linalg)
