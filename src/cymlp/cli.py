"""The ``cymlp`` command line.

``cymlp demo`` trains the tutorial's 30-5-3 letters network and prints what
the tutorial prints. Errors a user can cause print one line to stderr and
exit with status 2; there is no traceback.
"""

import argparse
import os
import sys

import numpy as np

from . import datasets
from ._backend import available_backends
from ._network import MLP

DEMO_LETTERS = "ABC"


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser():
    """The argument parser of the ``cymlp`` command."""
    parser = _Parser(
        prog="cymlp", description="Multi-layer perceptrons with a compiled core.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)

    demo = commands.add_parser(
        "demo", help="train the tutorial's letters network (A, B, C on a 5x6 grid)",
        description="Train the tutorial's 30-5-3 sigmoid network on the letters A, B and C "
                    "with per-sample updates, print the accuracy of every epoch, the trained "
                    "weights and the predicted letters.")
    demo.add_argument("--epochs", type=_positive_int, default=100,
                      help="passes over the three letters (default: 100)")
    demo.add_argument("--learning-rate", type=_positive_float, default=1.0,
                      help="SGD step size on the MSE loss (default: 1.0)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the uniform(-0.5, 0.5) initial weights (default: 0)")
    demo.add_argument("--backend", choices=("auto", "cython", "numpy"), default=None,
                      help="kernel backend (default: $CYMLP_BACKEND, else auto)")
    demo.set_defaults(run=run_demo)
    return parser


def _version():
    from . import __version__
    return __version__


def run_demo(args):
    """Train the letters network and print the tutorial's output."""
    X, Y = datasets.letters()
    net = MLP([30, 5, 3], activation="sigmoid", output_activation="sigmoid", loss="mse",
              bias=False, init="uniform", seed=args.seed, backend=args.backend)
    history = net.fit(X, Y, epochs=args.epochs, learning_rate=args.learning_rate,
                      batch_size=1, shuffle=False)
    for epoch, accuracy in enumerate(history.accuracy, start=1):
        print(f"Epoch: {epoch}, Accuracy: {100 * accuracy:.2f}%")
    with np.printoptions(precision=8, suppress=True):
        print("Trained w1:", net.weights[0], sep="\n")
        print("Trained w2:", net.weights[1], sep="\n")
    predicted = net.classify(X)
    print(f"Predicted Letter: {DEMO_LETTERS[predicted[0]]}")
    for letter, index in zip(DEMO_LETTERS, predicted):
        print(f"  {letter} -> {DEMO_LETTERS[index]}")
    print(f"Backend: {net.backend} (available: {', '.join(available_backends())}); "
          f"final loss {history.loss[-1]:.6f}")
    return 0


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (e.g. `cymlp demo | head`): stop quietly.
        sys.stdout = open(os.devnull, "w")
        return 0
    except (ValueError, TypeError, ImportError, OSError, FloatingPointError) as error:
        print(f"cymlp {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cymlp {args.command}: interrupted", file=sys.stderr)
        return 130
