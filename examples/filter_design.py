"""Inverse design of a one-sided band-pass filter: complex FIR taps fitted through the FFT.

A filter with complex taps ``h`` can pass positive frequencies and stop the negative ones (as
the analytic-signal filters of a radio receiver or a single-sideband modulator do); a real one
cannot, since its response is conjugate-symmetric, ``|H(-f)| = |H(f)|``. This example designs
both by gradient descent on the magnitude of the frequency response:

* complex taps, the response ``fft(h, n)`` over all frequencies, the loss a weighted
  least-squares misfit of ``|H|`` to the target. The gradient with respect to the complex taps
  follows fungrad's convention (``dL/dRe h - i dL/dIm h``), so the descent step is along its
  conjugate; it is checked against central finite differences along the real and imaginary
  parts of every tap (``fungrad.testing.check_grads``) before the design starts;
* real taps, the response ``rfft(h, n)`` over the non-negative frequencies only (all a real
  filter has), the same loss there. Its gradient (through the halved spectrum) is checked the
  same way; its response at the negative frequencies then shows the image band a real filter
  cannot suppress.

It prints the check, the loss as the design proceeds and the designs' passband ripple and
stopband attenuation, and saves two plots (the magnitude responses in dB, and the loss curves)
in ``--out-dir`` when matplotlib is installed. ``python examples/filter_design.py --help`` lists
the options; ``main(...)`` takes short settings for tests.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small arrays: threads cost more
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

try:
    import fungrad as fg
except ImportError:  # running from a source checkout without installing fungrad
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import fungrad as fg
import fungrad.numpy as fnp
from fungrad.testing import check_grads

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402
from _plots import save_plot  # noqa: E402

PASS = (0.06, 0.20)  # the pass band, in cycles per sample (positive frequencies only)
GUARD = 0.03  # transition width on each side of the band, left out of the loss


def target_and_weights(freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The target magnitude (1 in the pass band, 0 elsewhere, negative frequencies included)
    and the loss weights (0 in the transition bands, 10 in the stop band: attenuation matters
    more than ripple)."""
    lo, hi = PASS
    passing = (freqs >= lo) & (freqs <= hi)
    transition = ((freqs > lo - GUARD) & (freqs < lo)) | ((freqs > hi) & (freqs < hi + GUARD))
    target = passing.astype(float)
    weights = np.where(transition, 0.0, np.where(passing, 1.0, 10.0))
    return target, weights / weights.sum()


def complex_loss(h, n: int):
    """Weighted misfit of ``|fft(h, n)|`` to the target over all ``n`` frequencies."""
    target, weights = target_and_weights(np.fft.fftfreq(n))
    magnitude = fnp.abs(fnp.fft.fft(h, n))
    return fnp.sum(weights * (magnitude - target) ** 2)


def real_loss(h, n: int):
    """The same misfit for real taps over the non-negative frequencies ``rfft`` gives."""
    target, weights = target_and_weights(np.fft.rfftfreq(n))
    magnitude = fnp.abs(fnp.fft.rfft(h, n))
    return fnp.sum(weights * (magnitude - target) ** 2)


def adam(loss, h, n: int, steps: int, lr: float) -> tuple[np.ndarray, list[float]]:
    """Adam on real or complex parameters; for complex ones the step is along the conjugate of
    fungrad's gradient, and the second moment tracks ``|g|^2``."""
    value_and_grad = fg.value_and_grad(loss)
    m = np.zeros_like(h)
    v = np.zeros(h.shape)
    history = []
    for t in range(1, steps + 1):
        value, g = value_and_grad(h, n)
        history.append(float(value))
        g = np.conj(g)  # the direction of steepest ascent (for real h, g itself)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * np.abs(g) ** 2
        h = h - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-12)
    return h, history


def band_report(h: np.ndarray, n: int) -> dict:
    """Passband ripple and the worst stopband level (dB), on both sides of zero frequency."""
    freqs = np.fft.fftfreq(n)
    db = 20 * np.log10(np.abs(np.fft.fft(h, n)) + 1e-12)
    target, weights = target_and_weights(freqs)
    passing = target == 1
    stop = (weights > 0) & ~passing
    return {"ripple_db": float(db[passing].max() - db[passing].min()),
            "stop_db": float(db[stop].max() - db[passing].max()),
            "image_db": float(db[(freqs < 0) & stop].max() - db[passing].max())}


def main(taps: int = 48, n: int = 512, steps: int = 1500, lr: float = 0.01, seed: int = 0,
         out_dir: str = ".", plot: bool = True) -> dict:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    h0 = 0.1 * (rng.standard_normal(taps) + 1j * rng.standard_normal(taps)) / np.sqrt(taps)

    # the gradients, against central differences along every real and imaginary part
    check_grads(lambda h: complex_loss(h, n), h0, modes=("rev", "fwd"))
    check_grads(lambda h: real_loss(h, n), h0.real.copy(), modes=("rev", "fwd"))
    g = fg.grad(complex_loss)(h0, n)
    eps = 1e-6
    probe = [(complex_loss(h0 + eps * d, n) - complex_loss(h0 - eps * d, n)) / (2 * eps)
             for d in (np.eye(taps)[0], 1j * np.eye(taps)[0])]
    print(f"gradient checked against finite differences (tap 0: dL/dRe h = {probe[0]:.6f}, "
          f"dL/dIm h = {probe[1]:.6f}; fungrad's gradient {g[0].real:.6f} "
          f"{g[0].imag:+.6f}i = dL/dRe h - i dL/dIm h)")

    h_complex, loss_complex = adam(complex_loss, h0, n, steps, lr)
    h_real, loss_real = adam(real_loss, h0.real.copy(), n, steps, lr)
    report = {"complex": band_report(h_complex, n), "real": band_report(h_real, n)}
    print(f"complex taps: loss {loss_complex[0]:.4f} -> {loss_complex[-1]:.6f}")
    print(f"real taps:    loss {loss_real[0]:.4f} -> {loss_real[-1]:.6f} (non-negative "
          "frequencies only)")
    for name, r in report.items():
        print(f"  {name:7s} taps: passband ripple {r['ripple_db']:.2f} dB, stopband "
              f"{r['stop_db']:.1f} dB, negative-frequency image {r['image_db']:.1f} dB")

    if plot:
        os.makedirs(out_dir, exist_ok=True)
        freqs = np.fft.fftshift(np.fft.fftfreq(n))
        target, _ = target_and_weights(freqs)

        def db(h):
            return np.fft.fftshift(20 * np.log10(np.abs(np.fft.fft(h, n)) + 1e-6))

        save_plot(os.path.join(out_dir, "filter_design_response.png"),
                  {"complex taps (fft)": db(h_complex), "real taps (rfft)": db(h_real),
                   "target (0 dB in the band, -80 dB drawn for 0)":
                       20 * np.log10(np.maximum(target, 1e-4))},
                  x=freqs, title=f"{taps}-tap FIR filters designed for a one-sided pass band",
                  xlabel="frequency (cycles per sample)", ylabel="|H| (dB)")
        save_plot(os.path.join(out_dir, "filter_design_loss.png"),
                  {"complex taps (fft)": loss_complex, "real taps (rfft)": loss_real},
                  title="Design loss (weighted misfit of |H|) under Adam", xlabel="Adam step",
                  ylabel="loss", log_y=True)
    print(f"({time.perf_counter() - t0:.1f} s)")
    return {"loss_complex": loss_complex, "loss_real": loss_real, "report": report,
            "h_complex": h_complex, "h_real": h_real, "gradient_probe": probe, "grad0": g[0]}


if __name__ == "__main__":
    parser = _cli.parser(__doc__)
    parser.add_argument("--taps", type=int, default=48, help="number of FIR taps")
    parser.add_argument("--n", type=int, default=512,
                        help="FFT length: the frequency grid the response is fitted on")
    parser.add_argument("--steps", type=int, default=1500, help="Adam steps for each design")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial taps")
    _cli.add_out_dir(parser, "two plots (PNG): the responses and the losses")
    parser.add_argument("--no-plot", action="store_true", help="skip the plots")
    args = parser.parse_args()
    main(taps=args.taps, n=args.n, steps=args.steps, lr=args.lr, seed=args.seed,
         out_dir=args.out_dir, plot=not args.no_plot)
