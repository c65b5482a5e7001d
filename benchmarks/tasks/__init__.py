"""Benchmark tasks: one module per task, each with ``make_problem`` and one factory per
implementation (see :mod:`tasks.common` for the contract)."""

TASKS = ("mlp", "babi_rnn", "embed_ce", "deep_chain", "lstm_char")
IMPLS = ("numpy", "torch", "autograd", "fungrad", "fungrad_jit", "fungrad_jit_stacked", "jax")
