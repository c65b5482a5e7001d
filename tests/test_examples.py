"""The examples' main functions, run with short settings, and the bAbI file format."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from examples_loader import load, quiet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))




def test_chapter13_runs_and_replays_the_books_numbers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ch13 = load("chapter13")
    results, text = quiet(ch13.main, rnn_iterations=30, plot=False)
    for key in ("14", "18", "21", "26", "29"):
        assert results["replay"][key] < 1e-7, key  # the book's printed digits
    for key in ("14", "16", "18", "19", "21", "26", "29", "29_as_written"):
        assert results[key][-1] < 0.8 * results[key][0], key
    assert results["14"] == results["16"] and results["18"] == results["19"]
    assert "[1 2 3 4 5]\n[ 2  4  6  8 10]" in text
    assert "Pred:" in text and "True:" in text


def test_babi_file_format_and_loader(tmp_path):
    babi = load("babi_rnn")
    path = babi.write_task1(str(tmp_path / "qa1.txt"), n_stories=3, seed=0)
    with open(path) as f:
        lines = f.read().splitlines()
    assert len(lines) == 45
    statement = re.compile(r"^\d+ (Mary|John|Daniel|Sandra) (moved|went|went back|journeyed|"
                           r"travelled) to the \w+\.$")
    question = re.compile(r"^\d+ Where is \w+\? \t\w+\t\d+$")
    for i, line in enumerate(lines):
        assert (question if (i % 15) % 3 == 2 else statement).match(line), line
    assert [int(line.split()[0]) for line in lines[:15]] == list(range(1, 16))
    raw, samples = babi.load_babi(path)
    assert len(raw) == 45 and len(samples) == 15
    by_id = {}
    for n, line in enumerate(lines):
        if n % 15 == 0:
            by_id = {}
        by_id[int(line.split()[0])] = line
        if "\t" in line:
            s = samples[len([x for x in lines[: n + 1] if "\t" in x]) - 1]
            support = by_id[s.support[0]]
            assert s.question[-1] in support.lower() and support.endswith(s.answer + ".")


def test_babi_main_short(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    babi = load("babi_rnn")
    results, text = quiet(babi.main, n_train=30, n_test=10, book_iterations=20, epochs=2,
                           plot=False)
    assert 0.0 <= results["qa"]["test_accuracy"] <= 1.0
    assert results["book"]["losses"][-1] < results["book"]["losses"][0]
    assert "test accuracy" in text and "Context:" in text


def test_char_lstm_main_short_gets_below_the_unigram_entropy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    char = load("char_lstm")
    results, text = quiet(char.main, steps=200, seq_len=16, batch=16, hidden=32,
                           max_chars=50000, time_budget=None, log_every=0, plot=False)
    losses = results["losses"]
    assert np.mean(losses[-10:]) < losses[0] - 1.0
    assert results["valid_loss"] < results["unigram_entropy"] - 0.2
    assert len(results["sample"]) == 304 and "sample" in text


def test_char_lstm_truncated_bptt_detaches_the_state():
    char = load("char_lstm")
    import fungrad as fg

    model = char.CharLSTM(5, dim=3, hidden=4, rng=np.random.default_rng(0))
    ids = np.array([[0, 1, 2, 3]])
    _, state = model(ids, model.cell.init_hidden(1))
    detached = fg.nn.detach_hidden(state)
    assert state[0].creators is not None and detached[0].creators is None


def test_functional_fit_main_short(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ff = load("functional_fit")
    results, _ = quiet(ff.main, steps=200, hidden=8, n_points=50, plot=False)
    assert results["losses"][-1] < 0.5 * results["losses"][0]
    assert results["newton_loss"] == pytest.approx(results["ridge_loss"], rel=1e-9)
    norms = results["newton_norms"]
    assert norms[-1] < 1e-8 < norms[0]


def test_char_lstm_by_default_runs_fixed_steps_and_logs_from_the_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    char = load("char_lstm")
    import inspect

    assert inspect.signature(char.main).parameters["time_budget"].default is None
    settings = dict(steps=3, seq_len=8, batch=4, hidden=8, max_chars=5000, log_every=100,
                    plot=False)
    (first, text), (again, _) = quiet(char.main, **settings), quiet(char.main, **settings)
    assert first["losses"] == again["losses"] and first["steps"] == 3
    assert re.search(r"^step +1 +loss", text, re.M)


def _recorded_plots(monkeypatch, *modules) -> list[dict]:
    """The examples' save_plot calls, recorded instead of drawn."""
    calls: list[dict] = []
    for module in modules:
        monkeypatch.setattr(module, "save_plot", lambda path, curves, **labels: calls.append(
            dict(path=path, curves=curves, **labels)))
    return calls


def test_babi_plots_are_titled_and_the_qa_curve_is_per_epoch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    babi = load("babi_rnn")
    calls = _recorded_plots(monkeypatch, babi)
    quiet(babi.main, n_train=20, n_test=5, book_iterations=4, epochs=3, plot=True)
    listing, qa = calls
    assert all(c["title"] and c["xlabel"] and c["ylabel"] for c in calls)
    assert qa["xlabel"] == "epoch" and [len(v) for v in qa["curves"].values()] == [3]
    assert listing["xlabel"].startswith("iteration") and len(listing["curves"][""]) == 4


def test_every_example_plot_has_a_title_and_axis_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ch13, char, ff = load("chapter13"), load("char_lstm"), load("functional_fit")
    calls = _recorded_plots(monkeypatch, ch13, char, ff)
    quiet(ch13.main, rnn_iterations=2, replay=False)
    quiet(char.main, steps=2, seq_len=8, batch=4, hidden=8, max_chars=5000, log_every=0)
    quiet(ff.main, steps=5, hidden=4, n_points=20)
    assert [os.path.normpath(c["path"]) for c in calls] == [
        "chapter13_losses.png", "char_lstm_loss.png", "functional_fit_loss.png"]
    for c in calls:
        assert c["title"] and c["xlabel"] and c["ylabel"], c["path"]
        assert all(len(v) for v in c["curves"].values()), c["path"]


def test_without_matplotlib_the_examples_say_once_that_plots_are_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    babi = load("babi_rnn")
    plots = sys.modules["_plots"]
    monkeypatch.setattr(plots, "_said_skipped", False)
    _, text = quiet(babi.main, n_train=20, n_test=5, book_iterations=2, epochs=1, plot=True)
    assert text.count("plots skipped") == 1 and 'pip install -e ".[plot]"' in text
    assert not list(tmp_path.glob("*.png"))


def test_blas_threads_times_both_settings_in_child_processes():
    blas = load("blas_threads")
    before = {k: os.environ.get(k) for k in blas.THREAD_VARIABLES}
    result, text = quiet(blas.main, rounds=1, steps=2)
    assert result["one_thread"] > 0 and result["default"] > 0
    assert "1 BLAS thread" in text and "BLAS default" in text
    assert {k: os.environ.get(k) for k in blas.THREAD_VARIABLES} == before  # ours untouched


def test_per_example_dp_sgd_clips_every_example_and_learns():
    dp = load("per_example_dp_sgd")
    results, text = quiet(dp.main, epochs=2, n_train=1024, compare_loop=True)
    first, last = results["history"][0], results["history"][-1]
    assert 0.0 < first["clipped_fraction"] <= 1.0 and first["max_norm"] > 1.0
    assert all(h["max_clipped_norm"] <= 1.0 + 1e-6 for h in results["history"])
    assert last["test_accuracy"] > 0.5  # four classes: chance is 0.25
    assert "clipped" in text and "fg.vmap" in text and "the same numbers" in text


def test_per_example_dp_sgd_clipping_bounds_each_example():
    dp = load("per_example_dp_sgd")
    rng = np.random.default_rng(1)
    grads = {"w": rng.standard_normal((5, 3, 2)) * 10, "b": rng.standard_normal((5, 2))}
    noisy, before, after = dp.clip_and_noise(grads, clip=1.0, sigma=0.0, rng=rng)
    np.testing.assert_allclose(after, np.minimum(before, 1.0), rtol=1e-12)
    scale = np.minimum(1.0, 1.0 / before)
    np.testing.assert_allclose(noisy["w"], np.tensordot(scale, grads["w"], axes=1) / 5)


# -- every example explains itself ---------------------------------------------------------


SCRIPTS = sorted(p for p in os.listdir(os.path.join(ROOT, "examples"))
                 if p.endswith(".py") and not p.startswith("_"))


def _option_entries(help_text: str) -> dict[str, str]:
    """``{"--steps STEPS": "help text (default: 800)"}`` for each argument argparse listed."""
    entries: dict[str, str] = {}
    key = None
    section = False
    for line in help_text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            section = line in ("options:", "optional arguments:", "positional arguments:")
            key = None
            continue
        if not section or not line.strip():
            continue
        if line.startswith("  ") and not line.startswith("    "):  # a new entry
            parts = line.strip().split("  ", 1)
            key = parts[0]
            entries[key] = parts[1].strip() if len(parts) > 1 else ""
        elif key is not None:  # the entry's help, wrapped
            entries[key] = (entries[key] + " " + line.strip()).strip()
    return entries


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_example_answers_help_at_once_with_each_options_help_and_default(script):
    env = dict(os.environ, PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), "--help"],
                         capture_output=True, text=True, timeout=60, env=env,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: "), run.stdout  # nothing ran before the help
    entries = _option_entries(run.stdout)
    assert "-h, --help" in entries and len(entries) > 1, run.stdout
    for option, text in entries.items():
        if option == "-h, --help":
            continue
        assert text and "(default:" in text, f"{script}: {option} needs help and a default"
    last = run.stdout.rstrip().splitlines()[-1]
    assert last.startswith(" ") or last.endswith(")"), f"{script} printed after its help"


def test_every_example_is_in_the_readmes_table():
    readme = open(os.path.join(ROOT, "README.md")).read()
    table = readme.split("## Examples", 1)[1].split("\n## ", 1)[0]
    missing = [s for s in SCRIPTS if f"| `{s}` |" not in table]
    assert missing == [], f"add these examples to the README's table: {missing}"


def test_plots_go_to_out_dir_and_say_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = load("functional_fit")
    plots = sys.modules["_plots"]

    class FakeFigure:  # matplotlib's part, so that the test needs no matplotlib
        def savefig(self, path, dpi):
            open(path, "wb").close()

    class FakeAxes:
        def __getattr__(self, name):
            return lambda *a, **k: None

    fake_pyplot = type(sys)("matplotlib.pyplot")
    fake_pyplot.subplots = lambda figsize: (FakeFigure(), FakeAxes())
    fake_pyplot.close = lambda fig: None
    fake = type(sys)("matplotlib")
    fake.use = lambda backend: None
    fake.pyplot = fake_pyplot
    monkeypatch.setitem(sys.modules, "matplotlib", fake)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", fake_pyplot)
    monkeypatch.setattr(FakeFigure, "tight_layout", lambda self: None, raising=False)
    out = tmp_path / "new" / "plots"
    _, printed = quiet(module.main, steps=30, hidden=4, n_points=20, out_dir=str(out))
    path = out / "functional_fit_loss.png"
    assert path.exists() and not list(tmp_path.glob("*.png"))
    assert f"saved {path}" in printed
    assert plots is sys.modules["_plots"]
