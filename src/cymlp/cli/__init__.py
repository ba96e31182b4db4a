"""The ``cymlp`` command line.

``cymlp demo`` trains the tutorial's 30-5-3 letters network and prints what
the tutorial prints; ``train``, ``predict``, ``evaluate`` and ``info`` work
on data files and saved models. Errors a user can cause print one line to stderr and
exit with status 2; there is no traceback.
"""

import argparse
import csv
import os
import sys

import numpy as np

from . import datasets
from ._backend import available_backends
from ._network import MLP
from ._tables import read_table

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
                    "weights and the predicted letters. With more than three --letters, with "
                    "--noise or with --shift, train instead a wider softmax network on noisy "
                    "(and/or shifted) copies of the letters and report its accuracy on fresh "
                    "copies drawn with another seed.",
        epilog="example: cymlp demo --letters ABCDEFGHIJ --noise 0.05 --plot demo.png")
    demo.add_argument("--epochs", type=_positive_int, default=None,
                      help=f"passes over the training letters (default: 100; "
                           f"{DEMO_COPIES_EPOCHS} for copies)")
    demo.add_argument("--learning-rate", type=_positive_float, default=None,
                      help=f"SGD step size (default: 1.0 on the tutorial's MSE loss; "
                           f"{DEMO_COPIES_LEARNING_RATE} on the cross-entropy for copies)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the initial weights (uniform(-0.5, 0.5) in the tutorial's "
                           "network) and of the noisy or shifted copies (default: 0)")
    demo.add_argument("--backend", choices=("auto", "cython", "numpy"), default=None,
                      help="kernel backend (default: $CYMLP_BACKEND, else auto)")
    demo.add_argument("--letters", type=_demo_letters, default=DEMO_LETTERS,
                      help="the letters to learn: two or more distinct letters A-Z, e.g. "
                           "ABCDEFGHIJ (default: ABC)")
    demo.add_argument("--noise", type=_pixel_noise, default=None, metavar="P",
                      help=f"train on copies whose pixels each flip with probability P, "
                           f"0 <= P < 0.5 (default: {DEMO_NOISE} with more than three "
                           f"letters, else 0: the tutorial's clean letters)")
    demo.add_argument("--shift", action="store_true",
                      help="train on copies moved by up to one pixel in each direction, "
                           "where the letter still fits on the grid")
    demo.add_argument("--per-letter", type=_positive_int, default=None, metavar="N",
                      help=f"training copies of each letter (default: "
                           f"{DEMO_COPIES_PER_LETTER}); the held-out set has "
                           f"{DEMO_HELD_OUT_PER_LETTER} per letter")
    demo.add_argument("--hidden", type=_positive_int, default=None, metavar="N",
                      help=f"hidden units (default: 5, the tutorial's; {DEMO_COPIES_HIDDEN} "
                           f"for copies)")
    demo.add_argument("--plot", type=_plot_path, default=None, metavar="FILE.png",
                      help="after training, save one picture of the loss and accuracy per "
                           "epoch and of the letters with their predicted labels (.png, .pdf "
                           "or .svg; needs matplotlib: pip install \"cymlp[plot]\")")
    demo.set_defaults(run=run_demo)

    train = commands.add_parser(
        "train", help="train a network on a CSV, .npy or .npz file and save it",
        description="Train a network on tabular data and save it as a .npz model. CSV files "
                    "need a header row; the target column may hold class names or numbers. "
                    "For .npy files the target is a column index, for .npz files the name of "
                    "an array beside the features array 'X'. Features are standardised (mean "
                    "0, variance 1) with statistics stored in the model.")
    train.add_argument("data", help="training data: .csv, .npy or .npz")
    train.add_argument("--target", required=True, help="target column (or index, or array)")
    train.add_argument("--hidden", type=_layer_list, default=[64],
                       help="hidden layer widths, comma-separated, e.g. 64,32 (default: 64)")
    train.add_argument("--activation", default="relu",
                       choices=("relu", "tanh", "sigmoid", "leaky_relu", "identity"),
                       help="hidden activation (default: relu)")
    train.add_argument("--loss", default="cross_entropy", choices=("cross_entropy", "bce", "mse"),
                       help="cross_entropy: classes (softmax); bce: two classes (sigmoid); "
                            "mse: numeric target, regression (default: cross_entropy)")
    train.add_argument("--optimizer", default="adam", choices=("adam", "sgd"),
                       help="default: adam")
    train.add_argument("--learning-rate", type=_positive_float, default=None,
                       help="default: 0.001 for adam, 0.01 for sgd")
    train.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default: 0)")
    train.add_argument("--epochs", type=_positive_int, default=30, help="default: 30")
    train.add_argument("--batch-size", type=_positive_int, default=32, help="default: 32")
    train.add_argument("--validation-split", type=float, default=0.0,
                       help="share of rows held out to report validation figures (default: 0)")
    train.add_argument("--early-stopping", action="store_true",
                       help="stop when the validation loss stops improving (needs "
                            "--validation-split) and keep the best epoch")
    train.add_argument("--no-standardize", action="store_true",
                       help="use the features as they are")
    train.add_argument("--seed", type=int, default=0, help="default: 0")
    train.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    train.add_argument("--backend", choices=("auto", "cython", "numpy"), default=None)
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--out", default="model.npz", help="model file to write "
                       "(default: model.npz)")
    train.set_defaults(run=run_train)

    predict = commands.add_parser(
        "predict", help="predict with a saved model",
        description="Predict the target for every row of a data file with a model saved by "
                    "'cymlp train'. CSV columns are matched by name; a target column, if "
                    "present, is ignored. Writes CSV: the prediction and, for classifiers, "
                    "one probability column per class.")
    predict.add_argument("model", help="model file (.npz) from 'cymlp train'")
    predict.add_argument("data", help="data: .csv, .npy or .npz")
    predict.add_argument("--out", default=None, help="CSV file to write (default: stdout)")
    predict.add_argument("--backend", choices=("auto", "cython", "numpy"), default=None)
    predict.set_defaults(run=run_predict)

    evaluate = commands.add_parser(
        "evaluate", help="accuracy, loss and confusion matrix of a saved model on data",
        description="Evaluate a model saved by 'cymlp train' on labelled data: the loss, and "
                    "for classifiers the accuracy and the confusion matrix (rows: true "
                    "class, columns: predicted class).")
    evaluate.add_argument("model", help="model file (.npz) from 'cymlp train'")
    evaluate.add_argument("data", help="labelled data: .csv, .npy or .npz")
    evaluate.add_argument("--target", required=True, help="target column (or index, or array)")
    evaluate.add_argument("--backend", choices=("auto", "cython", "numpy"), default=None)
    evaluate.set_defaults(run=run_evaluate)

    info = commands.add_parser(
        "info", help="describe a saved model",
        description="Print a saved model's architecture, parameter count, options and a "
                    "summary of its training history.")
    info.add_argument("model", help="model file (.npz)")
    info.set_defaults(run=run_info)
    return parser


def _layer_list(text):
    if text.strip() in ("", "none"):
        return []
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers such as 64,32, got {text!r}") from None
    if any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError(f"layer widths must be >= 1, got {text!r}")
    return widths


def _version():
    from . import __version__
    return __version__


def _demo_letters(text):
    """``--letters``: two or more distinct letters A-Z, returned upper case."""
    try:
        datasets.letters(text)  # the library's checks and messages
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if len(text) < 2:
        raise argparse.ArgumentTypeError(f"expected two or more letters to tell apart, "
                                         f"got {text!r}")
    return text.upper()


def _pixel_noise(text):
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


def _plot_path(text):
    """``--plot``: a file name whose extension names a format matplotlib always writes."""
    extension = os.path.splitext(text)[1].lower().lstrip(".")
    if extension not in DEMO_PLOT_FORMATS:
        endings = ", ".join(f".{name}" for name in DEMO_PLOT_FORMATS[:-1])
        raise argparse.ArgumentTypeError(f"expected a file name ending in {endings} or "
                                         f".{DEMO_PLOT_FORMATS[-1]}, got {text!r}")
    return text


def run_demo(args):
    """Train the letters network and print the tutorial's output.

    With more than three letters, with noise or with shifts, train on copies
    of the letters instead and report the accuracy on fresh copies.
    """
    names = args.letters
    noise = args.noise
    if noise is None:
        noise = DEMO_NOISE if len(names) > len(DEMO_LETTERS) else 0.0
    if noise or args.shift:
        return _run_copies_demo(args, names, noise)
    if args.per_letter is not None:
        raise ValueError("--per-letter applies to training on copies of the letters: add "
                         "--noise P or --shift (or choose more than three --letters)")
    X, Y = datasets.letters(names)
    hidden = 5 if args.hidden is None else args.hidden
    net = MLP([30, hidden, len(names)], activation="sigmoid", output_activation="sigmoid",
              loss="mse", bias=False, init="uniform", seed=args.seed, backend=args.backend)
    history = net.fit(X, Y, epochs=100 if args.epochs is None else args.epochs,
                      learning_rate=1.0 if args.learning_rate is None else args.learning_rate,
                      batch_size=1, shuffle=False)
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
    history = net.fit(X, Y, epochs=DEMO_COPIES_EPOCHS if args.epochs is None else args.epochs,
                      learning_rate=learning_rate, batch_size=DEMO_COPIES_BATCH_SIZE)
    for epoch, accuracy in enumerate(history.accuracy, start=1):
        print(f"Epoch: {epoch}, Accuracy: {100 * accuracy:.2f}%")
    clean, _ = datasets.letters(names)
    predicted = net.classify(clean)
    outputs = net.predict(X_held_out)
    truth, guessed = Y_held_out.argmax(axis=1), outputs.argmax(axis=1)
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
        from . import plot
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('--plot needs matplotlib, which is not installed: '
                          'pip install "cymlp[plot]"') from None
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
        raise OSError(f"--plot: cannot write {path!r}: {error.strerror or error}") from None
    print(f"Plot saved to {path}")


# ---------------------------------------------------------------- train / predict

def _label(value):
    """A class label for JSON and for printing: whole floats become ints."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value.item() if isinstance(value, np.generic) else value


def _encode_targets(values, loss, path, target):
    """(Y, output activation, classes) for a loss, from the target column."""
    if loss == "mse":
        if values.dtype.kind != "f":
            raise ValueError(f"{path}: --loss mse needs a numeric target column; {target!r} "
                             "holds text (use --loss cross_entropy for class names)")
        return values[:, None], "identity", None
    classes = np.unique(values)
    if loss == "bce":
        if len(classes) != 2:
            raise ValueError(f"{path}: --loss bce needs exactly two classes in {target!r}; "
                             f"found {len(classes)}")
        return (values == classes[1]).astype(np.float64)[:, None], "sigmoid", classes
    if len(classes) < 2:
        raise ValueError(f"{path}: the target {target!r} has only one class")
    if len(classes) > 1000:
        raise ValueError(f"{path}: the target {target!r} has {len(classes)} distinct values; "
                         "for a numeric target use --loss mse")
    return (values[:, None] == classes[None, :]).astype(np.float64), "softmax", classes


class _Progress:
    """Per-epoch progress on stderr: a tqdm bar when tqdm is installed, else lines."""

    def __init__(self, epochs, quiet):
        self.epochs, self.quiet = epochs, quiet
        self.bar = None

    def __call__(self, epoch, history):
        if self.quiet:
            return
        if epoch == 1:  # created with the first epoch, after fit validated its options
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=self.epochs, unit="epoch", file=sys.stderr)
            except ImportError:
                self.bar = None
        figures = {"loss": f"{history.loss[-1]:.4f}", "acc": f"{history.accuracy[-1]:.3f}"}
        if history.val_loss:
            figures["val_loss"] = f"{history.val_loss[-1]:.4f}"
            figures["val_acc"] = f"{history.val_accuracy[-1]:.3f}"
        if self.bar is not None:
            self.bar.set_postfix(figures, refresh=False)
            self.bar.update(1)
        else:
            print(history.summary(), file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run_train(args):
    """Train on a data file and save the model."""
    from ._io import save_network
    directory = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(directory):  # say so before training, not after
        raise FileNotFoundError(f"cannot save to {args.out!r}: directory {directory!r} "
                                "does not exist")
    table = read_table(args.data, target=args.target)
    Y, output_activation, classes = _encode_targets(table.target, args.loss, args.data,
                                                    args.target)
    X = table.features
    if args.no_standardize:
        mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
    else:
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale[scale == 0] = 1.0
    learning_rate = args.learning_rate or (0.001 if args.optimizer == "adam" else 0.01)
    net = MLP([X.shape[1], *args.hidden, Y.shape[1]], activation=args.activation,
              output_activation=output_activation, loss=args.loss,
              init="he_uniform" if args.activation in ("relu", "leaky_relu") else "glorot_uniform",
              dtype=np.dtype(args.dtype).type, seed=args.seed, backend=args.backend)
    options = dict(epochs=args.epochs, learning_rate=learning_rate, batch_size=args.batch_size,
                   optimizer=args.optimizer, validation_split=args.validation_split,
                   early_stopping=args.early_stopping)
    if args.optimizer == "sgd":
        options["momentum"] = args.momentum
    elif args.momentum:
        raise ValueError("--momentum applies to --optimizer sgd")
    progress = _Progress(args.epochs, args.quiet)
    try:
        history = net.fit((X - mean) / scale, Y, callback=progress, **options)
    finally:
        progress.close()
    extra = {"cli": {
        "task": "regression" if classes is None else "classification",
        "classes": None if classes is None else [_label(c) for c in classes],
        "feature_names": table.feature_names,
        "target": args.target,
    }}
    save_network(net, args.out, extra=extra, arrays={"feature_mean": mean, "feature_scale": scale})
    summary = f"Saved {args.out}: {net!r}; final {history.summary()}"
    if history.stopped_early:
        summary += f" (stopped early; kept epoch {history.best_epoch})"
    print(summary)
    return 0


def _load_cli_model(path, backend):
    from ._io import load_network
    net, extra, arrays = load_network(path, backend=backend)
    settings = extra.get("cli")
    if (not isinstance(settings, dict) or "feature_mean" not in arrays
            or "feature_scale" not in arrays):
        raise ValueError(f"{path}: this model was not saved by 'cymlp train' (it lacks the "
                         "feature statistics and labels the command line needs)")
    mean, scale = arrays["feature_mean"], arrays["feature_scale"]
    names = settings.get("feature_names")
    if (not isinstance(names, list) or len(names) != net.layer_sizes[0]
            or mean.shape != (net.layer_sizes[0],) or scale.shape != mean.shape
            or not np.all(scale > 0)):
        raise ValueError(f"{path}: the model's feature statistics do not match its inputs")
    classes = settings.get("classes")
    if classes is not None and (not isinstance(classes, list) or len(classes) != max(
            2, net.layer_sizes[-1])):
        raise ValueError(f"{path}: the model's class labels do not match its outputs")
    return net, settings, mean, scale


def _class_probabilities(net, outputs):
    if net.layer_sizes[-1] == 1:  # bce: the output is P(second class)
        return np.hstack([1 - outputs, outputs])
    return outputs


def _same_kind_labels(values, classes, path):
    """The target column as a list comparable with the stored class labels."""
    numeric = all(isinstance(c, (int, float)) for c in classes)
    if numeric and values.dtype.kind != "f":
        raise ValueError(f"{path}: the target holds text, the model's classes are numbers")
    return [(_label(v) if numeric else str(v)) for v in values]


def run_predict(args):
    """Write predictions for a data file."""
    net, settings, mean, scale = _load_cli_model(args.model, args.backend)
    table = read_table(args.data, feature_names=settings["feature_names"])
    outputs = net.predict((table.features - mean) / scale)
    classes = settings["classes"]
    if classes is None:
        header, rows = ["prediction"], [[repr(float(value))] for value in outputs[:, 0]]
    else:
        probabilities = _class_probabilities(net, outputs)
        header = ["prediction"] + [f"p_{label}" for label in classes]
        rows = [[str(classes[int(np.argmax(p))])] + [f"{value:.6g}" for value in p]
                for p in probabilities]
    file = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    finally:
        if args.out:
            file.close()
    if args.out:
        print(f"Wrote {len(rows)} predictions to {args.out}")
    return 0


def run_evaluate(args):
    """Loss, accuracy and confusion matrix on labelled data."""
    net, settings, mean, scale = _load_cli_model(args.model, args.backend)
    table = read_table(args.data, target=args.target, feature_names=settings["feature_names"])
    X = (table.features - mean) / scale
    classes = settings["classes"]
    if classes is None:
        if table.target.dtype.kind != "f":
            raise ValueError(f"{args.data}: the target holds text; this model is a regression")
        Y = table.target[:, None]
        print(f"Rows: {len(Y)}")
        print(f"Loss (mse): {net.loss(X, Y):.6f}")
        return 0
    labels = _same_kind_labels(table.target, classes, args.data)
    index = {label: i for i, label in enumerate(classes)}
    unknown = sorted({str(label) for label in labels if label not in index})
    if unknown:
        raise ValueError(f"{args.data}: target values the model never saw: "
                         f"{', '.join(unknown[:5])}")
    truth = np.array([index[label] for label in labels])
    if net.layer_sizes[-1] == 1:
        Y = truth[:, None].astype(np.float64)
    else:
        Y = np.eye(len(classes))[truth]
    predicted = _class_probabilities(net, net.predict(X)).argmax(axis=1)
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    print(f"Rows: {len(truth)}")
    print(f"Accuracy: {100 * np.mean(truth == predicted):.2f}%")
    print(f"Loss ({net.loss_name}): {net.loss(X, Y):.6f}")
    print("Confusion matrix (rows: true, columns: predicted):")
    names = [str(label) for label in classes]
    width = max(max(len(name) for name in names), len(str(matrix.max())), 4)
    print(" " * width + " " + " ".join(f"{name:>{width}}" for name in names))
    for name, row in zip(names, matrix):
        print(f"{name:>{width}} " + " ".join(f"{count:>{width}}" for count in row))
    return 0


def run_info(args):
    """Describe a saved model."""
    from ._io import load_network
    net, extra, arrays = load_network(args.model)
    history = net.history
    print(f"Model: {args.model}")
    print(f"Architecture: {' -> '.join(map(str, net.layer_sizes))} "
          f"({', '.join(net.activations)})")
    print(f"Parameters: {net.n_params} ({np.dtype(net.dtype).name}), "
          f"bias: {'yes' if net.bias else 'no'}")
    print(f"Loss: {net.loss_name}; optimizer steps taken: {net.state_dict()['step']}")
    settings = extra.get("cli") if isinstance(extra, dict) else None
    if isinstance(settings, dict):
        print(f"Target: {settings.get('target')} ({settings.get('task')})")
        if settings.get("classes") is not None:
            print(f"Classes: {', '.join(map(str, settings['classes']))}")
        names = settings.get("feature_names") or []
        shown = ", ".join(map(str, names[:10])) + (", ..." if len(names) > 10 else "")
        print(f"Features: {len(names)} ({shown})")
    if history.epochs:
        print(f"Training: {history.epochs} epochs; last {history.summary()}")
        best = int(np.argmin(history.loss))
        print(f"Lowest training loss {history.loss[best]:.6f} in epoch {best + 1}")
        if history.stopped_early:
            print(f"Stopped early; weights of epoch {history.best_epoch} kept")
    else:
        print("Training: none recorded")
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
