"""``cymlp demo``: the tutorial's letters network, and its copies-of-letters variant.

Without options it trains the tutorial's 30-5-3 sigmoid network on the clean
letters A, B and C and prints what the tutorial prints. With more than three
letters, with ``--noise`` or with ``--shift`` it trains a wider softmax
network on noisy and/or shifted copies and reports the accuracy on fresh
copies drawn with another seed.
"""

import argparse
import os
import sys

import numpy as np

from .. import MLP, TrainingDiverged, available_backends, datasets
from .._codes import classify
from ._errors import CLIError, check_backend, check_output_file, error_text, reported

DEMO_LETTERS = "ABC"
# The demo on copies of the letters (more than three letters, --noise or --shift).
# Measured over seeds 0-9 (both backends give the same figures): the held-out
# accuracy for A-J at noise 0.05 is 99.6-100.0%, mean 99.8% (the best any
# classifier can do there, picking the nearest clean letter, is about 99.95%);
# for all 26 letters at noise 0.05 99.4-99.9%; for all 26 shifted at noise 0.1
# 95.2-96.3% (best possible about 97.7%). Training takes under 0.3 s compiled,
# under 1.5 s on the NumPy backend.
DEMO_NOISE = 0.05                 # pixel flip probability with more than three letters
DEMO_COPIES_PER_LETTER = 200      # training copies of each letter
DEMO_HELD_OUT_PER_LETTER = 100    # fresh copies of each letter, drawn with another seed
DEMO_COPIES_HIDDEN = 64
DEMO_COPIES_EPOCHS = 30
DEMO_COPIES_LEARNING_RATE = 0.5
DEMO_COPIES_BATCH_SIZE = 10
DEMO_PLOT_FORMATS = ("png", "pdf", "svg")


def demo_letters(text):
    """``--letters``: two or more distinct letters A-Z, returned upper case."""
    try:
        datasets.letters(text)  # the library's checks and messages
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if len(text) < 2:
        raise argparse.ArgumentTypeError(f"expected two or more letters to tell apart, "
                                         f"got {text!r}")
    return text.upper()


def pixel_noise(text):
    """``--noise``: a flip probability in [0, 0.5)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability such as 0.05, "
                                         f"got {text!r}") from None
    if not 0.0 <= value < 0.5:  # also rejects nan
        raise argparse.ArgumentTypeError(f"expected a probability 0 <= P < 0.5 (at 0.5 the "
                                         f"pixels are pure noise), got {text}")
    return value


def plot_path(text):
    """``--plot``: a file name whose extension names a format matplotlib always writes."""
    extension = os.path.splitext(text)[1].lower().lstrip(".")
    if extension not in DEMO_PLOT_FORMATS:
        endings = ", ".join(f".{name}" for name in DEMO_PLOT_FORMATS[:-1])
        raise argparse.ArgumentTypeError(f"expected a file name ending in {endings} or "
                                         f".{DEMO_PLOT_FORMATS[-1]}, got {text!r}")
    return text


def check_plot(path):
    """Fail before training if ``--plot`` cannot work: no matplotlib, or no such folder."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError('--plot needs matplotlib, which is not installed: '
                       'pip install "cymlp[plot]"') from None
    check_output_file(path, "--plot", "demo.png")


def run_demo(args):
    """Train the letters network and print the tutorial's output.

    With more than three letters, with noise or with shifts, train on copies
    of the letters instead and report the accuracy on fresh copies.
    """
    if args.plot:
        check_plot(args.plot)
    names = args.letters
    noise = args.noise
    if noise is None:
        noise = DEMO_NOISE if len(names) > len(DEMO_LETTERS) else 0.0
    if noise or args.shift:
        return _run_copies_demo(args, names, noise)
    if args.per_letter is not None:
        raise CLIError("--per-letter applies to training on copies of the letters: add "
                       "--noise P or --shift (or choose more than three --letters)")
    X, Y = datasets.letters(names)
    hidden = 5 if args.hidden is None else args.hidden
    check_backend(args.backend)
    # Every option was checked by the argument parser: of the exceptions MLP and
    # fit raise, only divergence (a learning rate too large) is the user's.
    net = MLP([30, hidden, len(names)], activation="sigmoid", output_activation="sigmoid",
              loss="mse", bias=False, init="uniform", seed=args.seed, backend=args.backend)
    with reported(TrainingDiverged):
        history = net.fit(X, Y, epochs=100 if args.epochs is None else args.epochs,
                          learning_rate=1.0 if args.learning_rate is None else
                          args.learning_rate, batch_size=1, shuffle=False)
    for epoch, accuracy in enumerate(history.accuracy, start=1):
        print(f"Epoch: {epoch}, Accuracy: {100 * accuracy:.2f}%")
    with np.printoptions(precision=8, suppress=True):
        print("Trained w1:", net.weights[0], sep="\n")
        print("Trained w2:", net.weights[1], sep="\n")
    predicted = net.classify(X)
    print(f"Predicted Letter: {names[predicted[0]]}")
    for letter, index in zip(names, predicted):
        print(f"  {letter} -> {names[index]}")
    print(f"Backend: {net.backend} (available: {', '.join(available_backends())}); "
          f"final loss {history.loss[-1]:.6f}")
    if args.plot:
        _save_demo_plot(args.plot, history, X, Y, net.predict(X), names,
                        f"cymlp demo: {len(names)} letters, "
                        f"{'-'.join(map(str, net.layer_sizes))} network")
    return 0


def _run_copies_demo(args, names, noise):
    """Train on noisy and/or shifted copies; report the accuracy on fresh ones."""
    hidden = DEMO_COPIES_HIDDEN if args.hidden is None else args.hidden
    per_letter = DEMO_COPIES_PER_LETTER if args.per_letter is None else args.per_letter
    learning_rate = (DEMO_COPIES_LEARNING_RATE if args.learning_rate is None
                     else args.learning_rate)
    check_backend(args.backend)
    net = MLP([30, hidden, len(names)], activation="sigmoid", output_activation="softmax",
              loss="cross_entropy", seed=args.seed, backend=args.backend)
    # Two independent streams from one seed: the held-out copies are never trained on.
    train_seed, held_out_seed = np.random.SeedSequence(args.seed).spawn(2)
    X, Y = datasets.letters(names, per_letter, noise, args.shift, seed=train_seed)
    X_held_out, Y_held_out = datasets.letters(names, DEMO_HELD_OUT_PER_LETTER, noise,
                                              args.shift, seed=held_out_seed)
    kind = ", ".join(word for word, used in (("noisy", noise), ("shifted", args.shift)) if used)
    how = ", ".join(part for part, used in ((f"pixel noise {noise:g}", noise),
                                            ("shifted by up to one pixel", args.shift)) if used)
    print(f"Training letters: {len(X)} {kind} copies of {names} ({per_letter} per letter, "
          f"{how})")
    print(f"Held-out letters: {len(X_held_out)} fresh copies drawn with another seed")
    print(f"Network: {'-'.join(map(str, net.layer_sizes))} (sigmoid hidden, softmax output, "
          f"cross-entropy), SGD with learning rate {learning_rate:g}, batches of "
          f"{DEMO_COPIES_BATCH_SIZE}")
    with reported(TrainingDiverged):
        history = net.fit(X, Y, epochs=DEMO_COPIES_EPOCHS if args.epochs is None
                          else args.epochs, learning_rate=learning_rate,
                          batch_size=DEMO_COPIES_BATCH_SIZE)
    for epoch, accuracy in enumerate(history.accuracy, start=1):
        print(f"Epoch: {epoch}, Accuracy: {100 * accuracy:.2f}%")
    clean, _ = datasets.letters(names)
    predicted = net.classify(clean)
    outputs = net.predict(X_held_out)
    truth, guessed = classify(Y_held_out), classify(outputs)
    print(f"Predicted Letter: {names[predicted[0]]}")
    for index, letter in enumerate(names):
        right = np.mean(guessed[truth == index] == index)
        print(f"  {letter} -> {names[predicted[index]]}   held-out: {100 * right:.2f}% "
              f"of {DEMO_HELD_OUT_PER_LETTER}")
    held_out_accuracy = float(np.mean(guessed == truth))
    print(f"Held-out accuracy: {100 * held_out_accuracy:.2f}% on {len(X_held_out)} "
          f"{kind} letters")
    print(f"Backend: {net.backend} (available: {', '.join(available_backends())}); "
          f"final loss {history.loss[-1]:.6f}")
    if args.plot:
        # The first held-out copy of each letter (rows are interleaved by letter).
        shown = slice(0, len(names))
        _save_demo_plot(args.plot, history, X_held_out[shown], Y_held_out[shown],
                        outputs[shown], names,
                        f"cymlp demo: {len(names)} letters, {kind} copies, "
                        f"{'-'.join(map(str, net.layer_sizes))} network; below, one "
                        f"held-out copy of each", held_out_accuracy)
    return 0


def _save_demo_plot(path, history, images, true, predicted, names, title,
                    held_out_accuracy=None):
    """One figure: loss and accuracy per epoch above, the letters and their labels below."""
    sys.stdout.flush()  # the training output comes first, even if plotting fails
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CLIError('--plot needs matplotlib, which is not installed: '
                       'pip install "cymlp[plot]"') from None
    from .. import plot
    ncols = min(len(names), 13)
    image_rows = -(-len(names) // ncols)
    figure = Figure(figsize=(max(8.0, 0.9 * ncols + 1.0), 3.8 + 1.2 * image_rows + 0.5),
                    layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[3.8, 1.2 * image_rows + 0.5])
    curves = top.subplots(1, 2)
    plot.plot_history(history, ax=curves)
    if held_out_accuracy is not None:
        curves[1].axhline(100 * held_out_accuracy, color="tab:purple", linestyle="--",
                          label=f"held-out accuracy {100 * held_out_accuracy:.2f}%")
        curves[1].legend(fontsize="small", loc="lower right")
    plot.plot_images(images, true=true, predicted=predicted, labels=names, ncols=ncols,
                     figure=bottom)
    figure.suptitle(title)
    try:
        figure.savefig(path, format=os.path.splitext(path)[1].lower().lstrip("."), dpi=110)
    except OSError as error:
        raise CLIError(f"--plot: cannot write {path!r}: {error_text(error, named=True)}") \
            from error
    print(f"Plot saved to {path}")


