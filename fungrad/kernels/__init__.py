"""Numba kernels for the loops NumPy does badly, each beside its NumPy twin.

Every kernel module imports only numpy and numba (never fungrad), compiles lazily on first
call (``@numba.njit(cache=True, nogil=True, error_model="numpy")``) and pairs each public
entry point ``f`` with a vectorised NumPy function ``f_numpy`` of the same signature and results.
The entry points of ``scatter``, ``bags``, ``softmax``, ``recurrent`` and ``reduce`` trust
their caller: the op has checked shapes, dtypes and index ranges once and passes C-contiguous
arrays in the layout the module's docstring states, so nothing is checked twice.
``error_model="numpy"`` makes a division by zero give inf/nan as the twin does (instead of
raising ZeroDivisionError) and lets LLVM vectorise loops that divide. The engine picks one;
neither is public API. This package deliberately imports nothing, so that ``import fungrad``
stays fast: import a module where it is first needed, e.g. ``from fungrad.kernels import
scatter``.

Modules:
    scatter      scatter_add (indexing / embedding backward)
    bags         bag_sum, bag_scatter (embedding_bag and its transpose)
    softmax      softmax_xent_forward/backward, softmax_forward
    activations  sigmoid_forward
    optim        sgd_update, adam_update (in place)
    recurrent    lstm_forward_step, lstm_backward_step (one time step, into caller arrays)
    reduce       sum_middle (sum_to's bias-gradient reduction)

Compiled kernels are cached in a per-user directory (``$FUNGRAD_CACHE_DIR``, else
``~/.cache/fungrad`` or the platform's equivalent), never inside the package: see ``_cache``.

Speed and compile times: ``benchmarks/KERNELS.md`` (from ``benchmarks/kernels_bench.py``).
Run the docstring examples as ``pytest --doctest-modules fungrad/kernels``, not
``python -m doctest fungrad/kernels/scatter.py``: the latter imports the file as a top-level
module ``scatter``, outside the package, and fails at its relative imports.
"""
