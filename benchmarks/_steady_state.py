"""Imported by every benchmark that times fungrad's steady state, before fungrad itself.

With an empty Numba cache fungrad builds its kernels in a background process and runs the
NumPy form meanwhile (see the README's "cold start"), so a benchmark's warm-up calls could
end before the compiled code is in place and its timed rounds would mix the two. Here the
build happens in the calling process, during warm-up, as it did before: timed rounds run the
compiled code. ``benchmarks/cold_start.py`` measures the cold path itself and does not import
this. An explicit ``FUNGRAD_BACKGROUND_BUILD`` in the environment wins.
"""

import os

os.environ.setdefault("FUNGRAD_BACKGROUND_BUILD", "0")
