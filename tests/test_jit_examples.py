"""The examples' ``--jit``: the same training, to rounding, and a printed speed-up.

(The listings' losses are compared over their first steps only: the bAbI RNN's training is
chaotic later on — a 1e-14 change of one weight grows to a 1% loss difference by step 700 in
plain eager runs — so any rounding difference, fusion's included, eventually shows.)
"""

from __future__ import annotations


import numpy as np

from examples_loader import load, quiet




def test_the_book_listing_under_jit_trains_the_same_model():
    import fungrad as fg

    babi = load("babi_rnn")
    raw = babi.generate_task1(40, np.random.default_rng(0))
    runs = {}
    for jit in (False, True):
        fg.manual_seed(0)
        runs[jit] = quiet(babi.book_listing, raw, iterations=60, log_every=0, jit=jit)
    (eager, _), (jitted, text) = runs[False], runs[True]
    np.testing.assert_allclose(jitted["losses"], eager["losses"], rtol=1e-9)
    assert jitted["p_correct"] == eager["p_correct"]
    assert "fg.jit: eager" in text and "x faster; 1 signature(s)" in text


def test_question_answering_under_jit_matches_eager_with_adam_and_clipping():
    babi = load("babi_rnn")
    lines = babi.generate_task1(30, np.random.default_rng(1))
    train = babi.parse_babi(lines)
    test = train[-20:]
    train = train[:-20]
    runs = {jit: quiet(babi.train_qa, train, test, epochs=4, batch_size=16, jit=jit)
            for jit in (False, True)}
    (eager, _), (jitted, text) = runs[False], runs[True]
    np.testing.assert_allclose(jitted["losses"], eager["losses"], rtol=1e-9)
    assert jitted["test_accuracy"] == eager["test_accuracy"]
    assert "fg.jit: eager" in text  # the last batch of an epoch is smaller: two signatures


def test_char_lstm_under_jit_matches_eager(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    char = load("char_lstm")
    kw = dict(steps=26, seq_len=8, batch=4, hidden=16, max_chars=5000, log_every=0, plot=False)
    eager, _ = quiet(char.main, **kw)
    jitted, text = quiet(char.main, jit=True, **kw)
    np.testing.assert_allclose(jitted["losses"], eager["losses"], rtol=1e-9)
    assert "fg.jit: eager" in text and "(median of 6)" in text
