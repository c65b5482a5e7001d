"""MkDocs hooks that build fungrad's API reference from the package itself (mkdocs.yml: hooks).

- **API pages are generated**, one per public module, from each module's ``__all__``: a module
  added to fungrad (``fungrad.scipy``, ``fungrad.numpy.fft``...) and a name added to an
  ``__all__`` (``fg.vmap``...) appear without editing any page. Classes and functions are
  rendered by mkdocstrings; fungrad's ops (``fg.tanh``...) get one page generated from the
  registry, and the guide ``guides/numpy.md`` a table of every ``fungrad.numpy`` function.
- **A strict build fails, saying exactly what to add**: a public name without a docstring, a
  public module without ``__all__``, a page under ``docs/pages/`` that is not in the nav. The
  problems are logged as warnings, which ``mkdocs build --strict`` turns into a failure.

Which modules get a page: every module under ``fungrad`` whose dotted name has no component
starting with ``_``, except the engine's internals (``INTERNAL``) and modules whose public
names are all re-exported by their parent package (documented on the parent's page).

The functions here import nothing from MkDocs, so ``tests/test_docs_site.py`` runs them.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import pkgutil
import re
import textwrap
import typing
from typing import Any, Iterable

log = logging.getLogger("mkdocs.plugins.fungrad_docs")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_SECTION = "API reference"
NUMPY_TABLE_MARKER = "<!-- fungrad: the table of fungrad.numpy's functions -->"

# the engine and compiler internals: documented through the names they give fungrad itself
INTERNAL = ("fungrad.registry", "fungrad.recording", "fungrad.hooks", "fungrad.backprop",
            "fungrad.kernels",
            "fungrad.jit.", "fungrad.primitives.", "fungrad.batching.")
PUBLIC_ANYWAY = ("fungrad.jit.profile",)  # inside an internal tree, but users import it
OPS_PAGE = "api/fungrad.primitives.md"


# -- which modules, which names --------------------------------------------------------------


def _is_internal(name: str) -> bool:
    if name in PUBLIC_ANYWAY:
        return False
    return any(name == t.rstrip(".") and not t.endswith(".") or
               name.startswith(t if t.endswith(".") else t + ".") for t in INTERNAL)


def public_modules() -> tuple[list[str], list[str]]:
    """``(modules with a page, problems)``: every public module of fungrad, imported."""
    import fungrad

    problems: list[str] = []
    names = ["fungrad"]
    for info in pkgutil.walk_packages(fungrad.__path__, "fungrad.", onerror=lambda n: None):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if _is_internal(info.name):
            continue
        names.append(info.name)
    names += [n for n in getattr(fungrad, "_LAZY", {}).values() if n not in names]
    pages = []
    for name in sorted(set(names), key=lambda n: (n.count("."), n)):
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            problems.append(f"{name} cannot be imported for the API reference ({e}); if it "
                            "needs an optional dependency, add that to the 'docs' extra in "
                            "pyproject.toml")
            continue
        if not hasattr(module, "__all__"):
            problems.append(f"{name} ({_where(module)}) has no __all__: add __all__ listing "
                            "its public names, or rename it with a leading underscore if it "
                            "is internal")
            continue
        if name != "fungrad" and _all_reexported(name, module):
            continue
        pages.append(name)
    return pages, problems


def _all_reexported(name: str, module: Any) -> bool:
    """Whether every public name of ``module`` is the same object in its parent package."""
    parent = importlib.import_module(name.rsplit(".", 1)[0])
    return all(getattr(parent, n, None) is getattr(module, n, object()) for n in module.__all__)


def _ours(obj: Any) -> bool:
    """Whether ``obj`` was defined in fungrad (not re-exported from NumPy or the stdlib)."""
    module = getattr(obj, "__module__", None) or ""
    return module == "fungrad" or module.startswith("fungrad.")


def _is_type_alias(obj: Any) -> bool:
    return typing.get_origin(obj) is not None or obj is typing.Any


def members(module: Any) -> tuple[list[str], list[str], list[str]]:
    """``(names rendered by mkdocstrings, op names, type aliases)`` for ``module``'s page."""
    from fungrad.registry import Op

    documented, ops, aliases = [], [], []
    for n in module.__all__:
        obj = getattr(module, n, None)
        if inspect.ismodule(obj):
            continue  # its own page
        if isinstance(obj, Op):
            ops.append(n)
        elif (inspect.isclass(obj) or inspect.isfunction(obj)) and _ours(obj) \
                and not _is_type_alias(obj):
            documented.append(n)
        else:
            aliases.append(n)
    return documented, ops, aliases


def _where(obj: Any) -> str:
    target = inspect.unwrap(obj) if callable(obj) else obj
    try:
        path = inspect.getsourcefile(target) or "?"
        line = inspect.getsourcelines(target)[1]
    except (TypeError, OSError):
        return "?"
    return f"{os.path.relpath(path, ROOT)}:{line}"


def docstring_problems(name: str) -> list[str]:
    """What is missing from module ``name``'s documented names: each a message saying what
    to add and where."""
    module = importlib.import_module(name)
    problems = []
    if not (module.__doc__ or "").strip():
        problems.append(f"module {name} ({_where(module)}) has no docstring: add one saying "
                        "what the module is for")
    documented, ops, _ = members(module)
    for n in documented:
        obj = getattr(module, n)
        if not (inspect.getdoc(obj) or "").strip() or (
                inspect.isclass(obj) and obj.__doc__ is None):
            problems.append(f"{name}.{n} (in {name}.__all__, defined at {_where(obj)}) has no "
                            "docstring: add one (a summary line, then an example: >>> ...)")
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                fn = value.fget if isinstance(value, property) else value
                if inspect.isfunction(fn) and not (fn.__doc__ or "").strip():
                    problems.append(f"{name}.{n}.{attr} (defined at {_where(fn)}) has no "
                                    "docstring: add one (a summary line)")
    for n in ops:
        op = getattr(module, n)
        if not (op.doc or "").strip():
            problems.append(f"the op {n} (registered at {_where(op.forward)}) has no "
                            "docstring: pass doc= to fg.defop (a summary line and an example)")
    return problems


# -- page text ---------------------------------------------------------------------------------


def page_path(name: str) -> str:
    return f"api/{name}.md"


def api_page(name: str) -> str:
    """The Markdown of module ``name``'s reference page."""
    module = importlib.import_module(name)
    documented, ops, aliases = members(module)
    lines = [f"# `{name}`", ""]
    if name == "fungrad":
        lines += [_module_intro(module), ""]
    else:
        lines += [f"::: {name}", "    options:", "      members: false",
                  "      show_root_heading: false", ""]
    if ops:
        lines += [f"The ops ({len(ops)}, such as `fg.{ops[0]}`) are listed on "
                  f"[their own page](fungrad.primitives.md).", ""]
    if aliases:
        lines += ["Also here:", ""]
        for n in aliases:
            obj = getattr(module, n)
            if _is_type_alias(obj):
                lines.append(f"- `{n}` = `{_alias_text(obj)}` (a type alias)")
            elif (inspect.isclass(obj) or inspect.isfunction(obj)) and not _ours(obj):
                lines.append(f"- `{n}`: `{obj.__module__}.{obj.__qualname__}`, re-exported")
            else:
                doc = "" if isinstance(obj, (int, float, str, tuple)) else _summary(obj)
                lines.append(f"- `{n}` = `{_short_repr(obj)}`" + (f": {doc}" if doc else ""))
        lines.append("")
    for n in documented:
        lines += [f"::: {name}.{n}", "    options:", "      heading_level: 2",
                  "      show_root_heading: true", "      show_root_full_path: false"]
        if getattr(getattr(module, n), "_is_protocol", False):
            lines.append("      merge_init_into_class: false")  # typing's own __init__
        lines.append("")
    return "\n".join(lines)


def _short_repr(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else type(obj).__name__ + " object"


def _alias_text(obj: Any) -> str:
    text = repr(obj).replace("typing.", "").replace("ForwardRef(", "").replace("')", "'")
    return re.sub(r"<class '([\w.]+)'>", r"\1", text).replace("'", "")


def _module_intro(module: Any) -> str:
    first = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(first.split())


def ops_page() -> str:
    """Every registered public op (``fg.tanh``...), from the registry: signature, docstring."""
    import fungrad
    from fungrad.registry import Op

    names = [n for n in fungrad.primitives.__all__ if isinstance(getattr(fungrad, n, None), Op)]
    lines = ["# Ops: `fg.<name>`", "",
             f"The {len(names)} registered ops, each `fg.<name>` (and most also a `Tensor` "
             "method). They take Tensors, ndarrays or Python numbers: any Tensor argument "
             "gives a Tensor result (recorded when an argument requires grad); ndarrays and "
             "numbers give an ndarray. `fg.ops()` is the registry itself; `fg.defop` adds "
             "yours. Generated from the registry.", ""]
    for n in names:
        op = getattr(fungrad, n)
        sig = str(inspect.signature(op))
        doc = op.doc.split("\nTakes ndarrays, Tensors or Python numbers.")[0]
        lines += [f"## `fg.{n}` {{ #fg.{n} }}", "", "```python", f"fg.{n}{sig}", "```", "",
                  fence_doctests(textwrap.dedent(_without_first_line(doc, n, sig))), ""]
    return "\n".join(lines)


def _without_first_line(doc: str, name: str, sig: str) -> str:
    """An op's docstring without the signature line fungrad puts first."""
    first, _, rest = doc.partition("\n")
    return rest.strip() if first.startswith(name + "(") else doc


def numpy_table() -> str:
    """A Markdown table of every ``fungrad.numpy`` function: what it does, and how it
    differs from NumPy's (its signature compared with NumPy's own)."""
    import numpy as np

    import fungrad.numpy as fnp

    rows = ["| function | what it does | arguments, against NumPy's |", "|---|---|---|"]
    for n in fnp.__all__:
        ours = getattr(fnp, n)
        if inspect.ismodule(ours):
            continue
        theirs = getattr(np, n, None)
        summary = _summary(ours)
        rows.append(f"| `{n}` | {summary} | {_differences(n, ours, theirs)} |")
    for sub in ("linalg", "fft"):
        module = getattr(fnp, sub, None)
        if module is None:
            continue
        rows += ["", f"`fungrad.numpy.{sub}`:", "",
                 "| function | what it does | arguments, against NumPy's |", "|---|---|---|"]
        for n in module.__all__:
            ours = getattr(module, n)
            if inspect.isclass(ours):
                continue
            rows.append(f"| `{sub}.{n}` | {_summary(ours)} | "
                        f"{_differences(n, ours, getattr(getattr(np, sub), n, None))} |")
    return "\n".join(rows)


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    first = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", first)
    return first.replace("|", "\\|") or "(no docstring)"


def _params(fn: Any) -> dict | None:
    try:
        return dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None


def _differences(name: str, ours: Any, theirs: Any) -> str:
    if theirs is None:
        return "not in NumPy (fungrad's addition)"
    notes = []
    mine, numpy_params = _params(ours), _params(theirs)
    if mine is None or numpy_params is None:
        return "same arguments (NumPy's signature cannot be read)"
    kinds = inspect.Parameter
    by_keyword = [p for p, v in numpy_params.items()
                  if v.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)]
    if not any(p.kind is kinds.VAR_KEYWORD for p in mine.values()):
        positional_too = any(p.kind is kinds.VAR_POSITIONAL for p in mine.values())
        missing = [p for p in by_keyword if p not in mine and not p.startswith("_") and not (
            positional_too and numpy_params[p].kind is kinds.POSITIONAL_OR_KEYWORD)]
        if missing:
            notes.append("no " + ", ".join(f"`{p}=`" for p in missing))
    extra = [p for p, v in mine.items() if p not in numpy_params and p != "keepdim"
             and v.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)]
    if extra:
        notes.append("adds " + ", ".join(f"`{p}=`" for p in extra))
    return "; ".join(notes) if notes else "NumPy's arguments"


# -- docstrings to Markdown ----------------------------------------------------------------------


_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`~?([^`]+)`")


def fence_doctests(text: str) -> str:
    """Docstring text as Markdown: each ``>>>`` session (through its output) becomes a fenced
    ``pycon`` block, and Sphinx roles (``:func:`x```) become code."""
    out: list[str] = []
    block: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if block:
            if stripped == "":
                out += ["```pycon", *block, "```", ""]
                block = []
                continue
            block.append(line)
            continue
        if stripped.startswith(">>>"):
            if out and out[-1].strip():
                out.append("")
            block = [line]
            continue
        out.append(_ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", line))
    if block:
        out += ["```pycon", *block, "```"]
    return "\n".join(out)


# -- the checks on pages ---------------------------------------------------------------------------


def nav_paths(nav: Any) -> set[str]:
    """Every page path in a MkDocs nav configuration (nested lists and dicts)."""
    found: set[str] = set()
    if isinstance(nav, str):
        found.add(nav)
    elif isinstance(nav, dict):
        for v in nav.values():
            found |= nav_paths(v)
    elif isinstance(nav, list):
        for v in nav:
            found |= nav_paths(v)
    return found


def page_problems(docs_dir: str, nav: Any, excluded: Iterable[str] = ()) -> list[str]:
    """Pages under ``docs_dir`` that the nav leaves out, each with the line to add."""
    listed = nav_paths(nav)
    problems = []
    for folder, _, files in os.walk(docs_dir):
        for f in sorted(files):
            if not f.endswith(".md"):
                continue
            rel = os.path.relpath(os.path.join(folder, f), docs_dir).replace(os.sep, "/")
            if rel in listed or rel in excluded or rel.startswith("api/"):
                continue
            section = "Guides" if rel.startswith("guides/") else (
                "Moving from ..." if rel.startswith("moving/") else "the nav")
            problems.append(f"{os.path.relpath(os.path.join(folder, f), ROOT)} is not in the "
                            f"nav: add a line '- Its title: {rel}' under {section} in "
                            "mkdocs.yml (or delete the page)")
    return problems


# -- MkDocs hooks ------------------------------------------------------------------------------


_GENERATED: dict[str, str] = {}


def on_config(config: Any) -> Any:
    """Generate the API pages and put them in the nav's 'API reference' section."""
    pages, problems = public_modules()
    for p in problems:
        log.warning(p)
    _GENERATED.clear()
    entries: list[Any] = []
    for name in pages:
        for problem in docstring_problems(name):
            log.warning(problem)
        _GENERATED[page_path(name)] = api_page(name)
        entries.append({name: page_path(name)})
        if name == "fungrad":
            _GENERATED[OPS_PAGE] = ops_page()
            entries.append({"fungrad.primitives (every op)": OPS_PAGE})
    for item in config["nav"] or []:
        if isinstance(item, dict) and API_SECTION in item:
            item[API_SECTION] = entries
            break
    else:
        log.warning(f"mkdocs.yml's nav has no '{API_SECTION}' section: add "
                    f"'- {API_SECTION}: []' (docs/hooks.py fills it)")
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated API pages to the site's files."""
    from mkdocs.structure.files import File

    for path, text in _GENERATED.items():
        files.append(File.generated(config, path, content=text))
    return files


def on_nav(nav: Any, config: Any, files: Any) -> Any:
    """Every hand-written page must be in the nav."""
    for problem in page_problems(config["docs_dir"], config["nav"]):
        log.warning(problem)
    return nav


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the generated table into the fungrad.numpy guide."""
    if NUMPY_TABLE_MARKER in markdown:
        markdown = markdown.replace(NUMPY_TABLE_MARKER, numpy_table())
    return markdown
