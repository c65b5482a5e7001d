"""fg.jit's back end: the Numba runner, its kernels and the raw-memory helpers they share.

- :mod:`~fungrad.jit.backend.native` — pointers, calls by address, BLAS, the context layout;
- :mod:`~fungrad.jit.backend.kernels_ew` and :mod:`~fungrad.jit.backend.kernels_block` — the
  kernels (elementwise ops on registers; block instructions);
- :mod:`~fungrad.jit.backend.table` — kernel groups compiled on first use, as addresses;
- :mod:`~fungrad.jit.backend.runner` — the fixed loop that executes an instruction array.
"""
