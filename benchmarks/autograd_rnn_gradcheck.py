"""autograd's rnn example: are fungrad's gradients upstream's along upstream's own trajectory?

    cd <a copy of autograd's examples/>   # rnn.py must be importable from here
    MODE=upstream PYTHONPATH=<repo> python <repo>/benchmarks/autograd_rnn_gradcheck.py
    MODE=fungrad  PYTHONPATH=<repo> python <repo>/benchmarks/autograd_rnn_gradcheck.py

The upstream run trains 45 adam steps (the example's settings) and saves each step's parameters
and gradient; the fungrad run takes the gradient at the same parameters and prints the largest
relative difference. (The example's printed losses part at iteration 40, where adam at step 0.1
turns a 1e-9 difference into a loss spike under upstream: AUTOGRAD_EXAMPLES.md.)
"""
import os
import pickle
import sys
import tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); sys.path.insert(0, os.getcwd())
import _autograd_shim as S
mode = os.environ["MODE"]
if mode == "fungrad": S.install_fungrad()
import numpy as onp
import rnn
from autograd import grad
from autograd.misc.optimizers import adam
onp.random.seed(0)
train = rnn.build_dataset(os.path.join(os.getcwd(), "rnn.py"), sequence_length=30, alphabet_size=128, max_lines=60)
init = rnn.create_rnn_params(input_size=128, output_size=128, state_size=40, param_scale=0.01,
                             rs=onp.random.RandomState(0))
loss = lambda p, i: -rnn.rnn_log_likelihood(p, train, train)
g = grad(loss)
if mode == "upstream":
    traj = []
    def cb(w, i, gr):
        traj.append(({k: onp.array(v) for k, v in w.items()}, {k: onp.array(v) for k, v in gr.items()}, float(loss(w, 0))))
    adam(g, init, step_size=0.1, num_iters=45, callback=cb)
    pickle.dump(traj, open(os.path.join(tempfile.gettempdir(), "rnn_traj.pkl"), "wb"))
else:
    traj = pickle.load(open(os.path.join(tempfile.gettempdir(), "rnn_traj.pkl"), "rb"))
    for i, (w, gu, lu) in enumerate(traj):
        gf = g(w, i)
        rel = max(onp.max(onp.abs(onp.asarray(gf[k]) - gu[k])) / (onp.max(onp.abs(gu[k])) + 1e-300) for k in gu)
        lf = float(loss(w, 0))
        if i % 5 == 0 or rel > 1e-6:
            print(i, f"grad rel diff {rel:.2e}", f"loss {lu:.12f} {lf:.12f}", f"gmax {max(onp.max(onp.abs(gu[k])) for k in gu):.3e}")
