"""fungrad.testing itself: check_grads, the strategies, the domain language, the README guide."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fungrad as fg
from fungrad.domains import ClassTargets, Domain, Indices, Mask, Real, default_domain, spread
from fungrad.testing import OpCall, check_grads, default_tolerances, temporary_ops
from fungrad.testing import strategies as fst

ROOT = Path(__file__).resolve().parents[1]
SOME = settings(max_examples=max(5, settings().max_examples // 2), deadline=None)


def message(fn) -> str:
    with pytest.raises(AssertionError) as info:
        fn()
    return str(info.value)


# -- check_grads: what it accepts -----------------------------------------------------------------


def test_check_grads_on_pytrees_tensors_floats_and_several_outputs():
    Point = namedtuple("Point", "x y")

    def loss(params, data, scale):
        h = fg.tanh(data @ params["layers"][0]["w"] + params["layers"][0]["b"])
        return fg.sum(h * params["out"].x) * scale + fg.sum(params["out"].y ** 2)

    params = {"layers": [{"w": np.full((3, 2), 0.1), "b": np.array([0.0, 0.2])}],
              "out": Point(np.array([0.5, -0.4]), np.array(0.3))}
    check_grads(loss, params, np.linspace(-1, 1, 6).reshape(2, 3), 1.5, order=2)
    check_grads(lambda t: (t.tanh(), [t * 2, {"s": t.sum()}]),
                fg.Tensor(np.array([0.1, 0.7]), autograd=True))


def test_check_grads_holds_integer_arguments_fixed():
    x, idx = np.linspace(0, 1, 8).reshape(4, 2), np.array([3, 0, 3])
    check_grads(lambda a, i: fg.index_select(a, i), x, idx, order=2)
    with pytest.raises(ValueError, match="no floating-point input"):
        check_grads(lambda i: i * 2, np.array([1, 2]))


def test_check_grads_third_order_and_full_jacobian_of_a_large_input():
    check_grads(lambda x: fg.sum(fg.sin(x) * x ** 2), np.array([0.4, -0.9]), order=3)
    check_grads(fg.softmax, np.linspace(-1, 1, 60).reshape(6, 10), full_jacobian=True)


def test_check_grads_upcasts_float32_inputs():
    check_grads(fg.tanh, np.array([0.2, -0.3], dtype=np.float32), order=2)


def test_tolerances_follow_the_precision_the_function_computes_in():
    assert default_tolerances(np.float32)[1] > default_tolerances(np.float64)[1]
    in_float32 = lambda x: fg.tanh(fg.astype(x, dtype="float32"))  # noqa: E731
    check_grads(in_float32, np.array([0.2, -0.3, 1.1]))  # would fail at float64 tolerances
    with pytest.raises(AssertionError):
        check_grads(in_float32, np.array([0.2, -0.3, 1.1]), eps=1e-6, rtol=1e-5, atol=1e-6)


def test_check_grads_validates_its_arguments():
    with pytest.raises(ValueError, match="modes"):
        check_grads(fg.tanh, np.ones(2), modes=("reverse",))
    with pytest.raises(ValueError, match="order"):
        check_grads(fg.tanh, np.ones(2), order=0)


# -- check_grads: what it says ---------------------------------------------------------------------


def _bad_scale():
    return fg.defop("testing_bad_scale", lambda x, y: x * y, (
        lambda g, out, x, y: g * y,
        lambda g, out, x, y: 0.5 * g * x,  # half of the right value
    ))


def test_failure_names_argument_order_mode_and_values():
    with temporary_ops():
        op = _bad_scale()
        msg = message(lambda: check_grads(lambda p: op(p["a"], p["b"]),
                                          {"a": np.ones(3), "b": np.array([1.0, 2.0, 3.0])}))
    assert "reverse mode (VJP) is wrong at order 1" in msg
    assert "argument 0 ('p')['b'] of shape (3,)" in msg
    analytic = float(re.search(r"analytic <u, J\^T v> = (\S+)", msg).group(1))
    numeric = float(re.search(r"numeric  <J u, v>   = (\S+)", msg).group(1))
    assert analytic == pytest.approx(numeric / 2, rel=1e-6)


def test_failure_gives_the_worst_jacobian_element():
    with temporary_ops():
        op = fg.defop("testing_one_bad_element", lambda x: x * x,
                      lambda g, out, x: (g * 2 * x * np.array([1.0, 1.0, 1.0, 1.3]),))
        x = np.array([[0.5, -1.0], [1.5, 2.0]]).ravel()
        msg = message(lambda: check_grads(op, x))
    assert "worst element: d output[3] / d argument 0 ('x')[3]" in msg
    assert "analytic 5.2" in msg and "numeric 4.0" in msg and "1 of 16" in msg


def test_forward_mode_failure_names_the_argument():
    with temporary_ops():
        op = _bad_scale()
        msg = message(lambda: check_grads(op, np.ones(2), np.array([0.5, 2.0]), modes=("fwd",)))
    assert "forward mode (JVP) is wrong at order 1" in msg and "argument 1 ('y')" in msg


def test_second_order_failure_names_the_derivative_checked():
    with temporary_ops():
        op = fg.defop("testing_raw_cos", lambda x: np.sin(x),
                      lambda g, out, x: (g * np.cos(fg.registry.unwrap(x)),))
        msg = message(lambda: check_grads(op, np.array([0.3, 1.0]), order=2))
    assert "order 2 (checking the VJP of op 'testing_raw_cos')" in msg


# -- the domain language --------------------------------------------------------------------------


def test_real_maps_the_unit_interval_onto_the_allowed_set():
    r = Real(-2.0, 2.0, avoid=(-0.5, 0.5), margin=0.1)
    x = r.from_unit(np.linspace(0, 1, 1001))
    assert x.min() == -2.0 and x.max() == 2.0 and np.all(np.diff(x) >= 0)
    assert np.all(np.abs(x - 0.5) >= 0.1 - 1e-12) and np.all(np.abs(x + 0.5) >= 0.1 - 1e-12)
    with pytest.raises(ValueError, match="no value"):
        Real(0.0, 0.1, avoid=(0.05,), margin=0.2)


@given(hnp.arrays(np.float64, st.integers(0, 30), elements=st.floats(0, 1)),
       st.floats(0.0, 0.2))
def test_spread_keeps_order_and_bounds_and_separates(u, gap):
    out = spread(u, gap)
    assert out.shape == u.shape and np.all((out >= 0) & (out <= 1 + 1e-12))
    if u.size > 1:
        s = np.sort(out)
        assert np.all(np.diff(s) >= min(gap, 1 / (u.size - 1)) - 1e-12)
        assert np.all(np.diff(out[np.argsort(u, kind="stable")]) >= 0)


def test_domain_apart_groups_must_share_a_real_spec():
    with pytest.raises(ValueError, match="share one Real"):
        Domain((Real(), Real(0, 1)), [((2,), (2,))], apart=[(0, 1)])
    with pytest.raises(ValueError, match="kind"):
        Domain((Real(),), [((2,),)], kind="pointwise")


def test_domain_draw_honours_every_spec():
    d = Domain((Real(), Real(), Indices(of=0, axis=1), ClassTargets(of=1), Mask()),
               [((3, 4), (2, 5), (6,), (2,), (3, 4))], apart=[(0, 1)], apart_margin=0.05)
    (x, y, idx, t, m), _ = d.draw(np.random.default_rng(0), d.cases[0], dtype=np.float32)
    assert x.dtype == y.dtype == np.float32 and m.dtype == bool
    assert idx.max() < 4 and t.max() < 5 and idx.dtype == t.dtype == np.int64
    both = np.sort(np.concatenate([x.ravel(), y.ravel()]).astype(np.float64))
    assert np.diff(both).min() >= 0.05 - 1e-6


def test_default_domain_is_marked_implicit():
    assert not default_domain(1).explicit and Domain((Real(),), [((2,),)]).explicit
    with temporary_ops():
        assert not fg.defop("testing_implicit", lambda x: x, lambda g, out, x: (g,)).domain.explicit


# -- strategies ------------------------------------------------------------------------------------


@SOME
@given(fst.broadcastable_shapes(3), st.data())
def test_broadcastable_shapes_broadcast(shapes, data):
    np.broadcast_shapes(*shapes)
    x = data.draw(fst.arrays(shapes[0], Real(0.5, 1.0), dtype=fst.float_dtypes()))
    assert x.shape == shapes[0] and np.all((x >= 0.5) & (x <= 1.0))


@SOME
@given(fst.arrays(fst.shapes(min_dims=1), Real(-1, 1, avoid=(0.0,), margin=0.2), apart=0.01,
                  dtype=np.float32))
def test_arrays_stay_in_their_domain(x):
    assert x.dtype == np.float32 and np.all(np.abs(x) >= 0.2 - 1e-6)
    assert np.unique(x).size == x.size


@SOME
@given(hnp.arrays(np.float32, (4,), elements=fst.elements(Real(1.0, 2.0), np.float32)))
def test_elements_compose_with_hypothesis_numpy(x):
    assert np.all((x >= 1.0) & (x <= 2.0))


@SOME
@given(fst.op_inputs("multiply", cases="invented"))
def test_op_inputs_invents_broadcast_shapes_for_elementwise_ops(call):
    np.broadcast_shapes(*call.shapes())
    assert call.run().shape == np.broadcast_shapes(*call.shapes())


@SOME
@given(fst.op_inputs(fg.ops()["sum"], cases="invented"))
def test_op_inputs_invents_valid_axes_for_reductions(call):
    assert set(call.params) == {"axis", "keepdims"}
    call.run()  # a bad axis would raise


@SOME
@given(fst.op_inputs("softmax", cases="invented"), fst.op_inputs("cross_entropy"))
def test_op_inputs_valid_for_one_axis_reductions_and_class_targets(sm, ce):
    assert isinstance(sm.params["axis"], int) and len(sm.shapes()[0]) >= 1
    assert ce.args[1].max() < ce.args[0].shape[-1]
    sm.run(), ce.run()


@SOME
@given(fst.op_inputs("index_select", dtype=fst.float_dtypes()))
def test_op_inputs_draws_indices_and_dtypes(call):
    x, idx = call.args
    assert x.dtype in (np.float32, np.float64) and idx.dtype == np.int64
    assert idx.max() < x.shape[0] and call.float_positions == [0]


def test_domain_params_offer_static_parameter_choices_to_invented_cases():
    with temporary_ops():
        leaky = fg.defop(
            "testing_leaky", lambda x, slope=0.1: np.where(x > 0, x, slope * x),
            lambda g, out, x, slope=0.1: (fg.where(x > 0, g, slope * g),),
            Domain((Real(avoid=(0.0,)),), [((3,),)], kind="elementwise",
                   params={"slope": (0.01, 0.3)}))

        @SOME
        @given(fst.op_inputs(leaky, cases="invented"))
        def check(call):
            assert call.params["slope"] in (0.01, 0.3)
            check_grads(call.function(), *call.float_args, order=2)

        check()


def test_op_inputs_rejects_inventing_for_general_ops():
    with pytest.raises(ValueError, match="declared cases"):
        fst.op_inputs("matmul", cases="invented")


@SOME
@given(fst.pytrees(max_leaves=4), st.data())
def test_pytrees_and_parameters_like(tree, data):
    leaves, spec = fg.tree.flatten(tree)
    assert leaves and all(isinstance(x, np.ndarray) for x in leaves)
    fresh = data.draw(fst.parameters_like(tree))
    new_leaves, new_spec = fg.tree.flatten(fresh)
    assert new_spec == spec and [x.shape for x in new_leaves] == [x.shape for x in leaves]
    check_grads(lambda t: sum(fg.sum(fg.tanh(x)) for x in fg.tree.flatten(t)[0]), fresh)


def test_opcall_repr_reproduces_the_call():
    call = OpCall("getitem", [np.array([[0.1, 1 / 3], [2.0, -1e-9]])],
                  {"index": (np.array([1, 0]), slice(None))})
    again = eval(repr(call), {"OpCall": OpCall, "np": np, "slice": slice})
    np.testing.assert_array_equal(again.run(), call.run())


def test_temporary_ops_restores_replaced_ops():
    tanh = fg.ops()["tanh"]
    with temporary_ops():
        fg.defop("tanh", lambda x: x, lambda g, out, x: (g,), replace=True)
        assert fg.ops()["tanh"] is not tanh
    assert fg.ops()["tanh"] is tanh


def test_check_op_runs_every_property_on_a_users_op():
    from fungrad.testing import properties

    with temporary_ops():
        op = fg.defop("testing_softsign", lambda x: x / (1 + np.abs(x)),
                      lambda g, out, x: (g / (1 + fg.abs(x)) ** 2,),
                      Domain((Real(-3, 3, avoid=(0.0,)),), [((3, 4),)], kind="elementwise"))
        properties.check_op(op, max_examples=5)
        with pytest.raises(ValueError, match="unknown properties"):
            properties.check_op(op, properties=["vjp"])


# -- ops registered from outside and the README guide --------------------------------------------


def test_an_op_registered_outside_is_picked_up_by_the_generated_suite(tmp_path):
    (tmp_path / "my_ops_plugin.py").write_text(textwrap.dedent("""
        import numpy as np
        import fungrad as fg
        fg.defop("plugin_cube", lambda x: x ** 3, lambda g, out, x: (3 * g * x * x,))
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]), CI="true")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "my_ops_plugin", "-p", "no:cacheprovider",
         str(ROOT / "tests" / "test_properties.py"), "-k", "plugin_cube", "-rA"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for test in ["vjp_matches_finite_differences", "second_order_matches_finite_differences",
                 "jvp_matches_vjp", "float32_preserved", "inputs_not_mutated",
                 "gradients_not_aliased", "method_function_grad_agree"]:
        assert re.search(rf"PASSED \S*test_properties.py::test_{test}\[plugin_cube\]",
                         run.stdout), run.stdout
    assert "test_builtin_op_declares_its_domain[plugin_cube]" not in run.stdout
    assert re.search(r"(\d+) passed", run.stdout).group(1) != "0"


def readme_guide() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Verify your own op", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_guide_runs():
    with temporary_ops():
        exec(compile(readme_guide(), "README.md", "exec"), {"__name__": "readme_guide"})


_SLOW_FIRST = '''
import functools, time


def slow_first(forward):
    """The forward, with a first call as slow as a Numba kernel's first (compiling) call."""
    first = [True]

    @functools.wraps(forward)
    def run(*args, **kwargs):
        if first[0]:
            first[0] = False
            time.sleep(0.5)
        return forward(*args, **kwargs)
    return run
'''


def _user_project(tmp_path: Path, env_update: dict) -> subprocess.CompletedProcess:
    """The README's recipe as a test file of a fresh project (no conftest, not in the
    repository), its op's first call slowed down, run by pytest in a subprocess."""
    code = readme_guide()
    slow = code.replace("lambda x: x / (1 + np.abs(x)),",
                        "slow_first(lambda x: x / (1 + np.abs(x))),")
    assert slow != code, "the README recipe changed: update this test's forward"
    slow = slow.replace("test_softsign()  # under pytest, the test runner calls it", "")
    project = tmp_path / "my_project"
    project.mkdir()
    (project / "test_my_op.py").write_text(_SLOW_FIRST + slow)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "HYPOTHESIS_PROFILE", "PYTHONPATH")}
    env.update(env_update)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_op.py"],
        capture_output=True, text=True, env=env, cwd=project, timeout=300)


def test_readme_recipe_passes_in_a_users_project_with_a_slow_first_call(tmp_path):
    run = _user_project(tmp_path, {"CI": "true"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_without_fungrads_profiles_the_slow_first_call_fails_the_deadline(tmp_path):
    # the control: Hypothesis's own default profile (200 ms deadline) fails the same recipe,
    # so the test above passes because of fungrad.testing's profiles
    run = _user_project(tmp_path, {"HYPOTHESIS_PROFILE": "default"})
    assert run.returncode != 0
    assert "DeadlineExceeded" in run.stdout or "deadline" in run.stdout.lower(), run.stdout


@pytest.mark.parametrize("env, want", [
    ({"CI": "true"}, ("ci", 20, True)),
    ({}, ("dev", 50, False)),
    ({"HYPOTHESIS_PROFILE": "thorough", "CI": "true"}, ("thorough", 500, False)),
])
def test_importing_fungrad_testing_loads_the_profile_the_environment_selects(env, want,
                                                                             monkeypatch):
    # what `import fungrad.testing` runs (its import in a fresh process is tested above)
    from fungrad.testing import profiles

    for name in ("CI", "HYPOTHESIS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    previous = settings.get_current_profile_name()
    try:
        settings.load_profile("default")  # as in a project that chose none
        profiles._load_on_import()
        s = settings.default
        got = (settings.get_current_profile_name(), s.max_examples, s.derandomize)
        assert got == want and s.deadline is None
    finally:
        settings.load_profile(previous)


def test_a_profile_the_project_chose_is_left_alone():
    code = ("from hypothesis import settings\n"
            "settings.register_profile('mine', max_examples=7)\n"
            "settings.load_profile('mine')\n"
            "import fungrad.testing\n"
            "print(settings.get_current_profile_name(), settings.default.max_examples)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "CI": "true"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["mine", "7"]


def test_importing_fungrad_testing_defers_hypothesis_until_the_project_imports_it():
    code = ("import sys\n"
            "import fungrad.testing\n"
            "print('hypothesis' in sys.modules)\n"
            "from hypothesis import settings\n"
            "print(settings.get_current_profile_name(), settings.default.max_examples)\n"
            "settings.load_profile('thorough')\n"  # registered, as before: users select it
            "print(settings.default.max_examples)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "CI": "true"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "ci", "20", "500"]


def test_check_grads_autograd_curried_form_and_no_arguments():
    check_grads(fg.tanh, modes=["rev"])(np.array([0.3, -0.7]))
    check_grads(fg.sin, order=2)(np.array([0.5]))
    with temporary_ops(), pytest.raises(AssertionError, match="reverse mode"):
        wrong = fg.defop("wrong_vjp_curried", lambda x: x * x, lambda g, out, x: (g * x,))
        check_grads(wrong, modes=["rev"])(np.array([0.5]))
    with pytest.raises(TypeError, match=r"no arguments given: call check_grads\(f, \*args\)"):
        check_grads(fg.tanh)()
    with pytest.warns(RuntimeWarning, match=r"no arguments given: call check_grads\(f, \*args\)"):
        check_grads(fg.tanh)  # its result discarded: nothing was checked, and it says so

