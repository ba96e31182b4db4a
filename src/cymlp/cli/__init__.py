"""The ``cymlp`` command line: argument parsing, the commands and ``main``.

``cymlp demo`` trains the tutorial's 30-5-3 letters network and prints what
the tutorial prints (``_demo.py``); ``train``, ``predict``, ``evaluate`` and
``info`` work on data files and saved models (their tables, standardisation
and target encoding are in ``_tabular.py``).

Errors a user can cause (a bad option, a data or model file that is missing
or malformed, a backend or extra that is not installed) print one line to
stderr and exit with status 2; there is no traceback. Anything else is a bug
in cymlp and shows its traceback (see ``_errors.py``).
"""

import argparse
import csv
import os
import sys

import numpy as np

from .. import MLP, TrainingDiverged
from .._codes import classify
from .._validation import check_seed
from ._demo import (
    DEMO_COPIES_EPOCHS,
    DEMO_COPIES_HIDDEN,
    DEMO_COPIES_LEARNING_RATE,
    DEMO_COPIES_PER_LETTER,
    DEMO_HELD_OUT_PER_LETTER,
    DEMO_LETTERS,
    DEMO_NOISE,
    demo_letters,
    pixel_noise,
    plot_path,
    run_demo,
)
from ._errors import BAD_ARGUMENT, BAD_FILE, CLIError, check_backend, reported
from ._tabular import (
    class_probabilities,
    encode_for_model,
    encode_target,
    feature_statistics,
    load_model,
    load_saved,
    plain_label,
    read_table,
    standardise,
)

__all__ = ["main", "build_parser", "CLIError"]

# The options of 'cymlp train' that only MLP.fit can judge (validation_split
# against the number of rows); its messages name the argument first.
FIT_CHECKED_OPTIONS = ("validation_split", "early_stopping", "momentum")


def _parse(text, kind, expected):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _positive_int(text):
    value = _parse(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text):
    value = _parse(text, float, "a number")
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _seed(text):
    try:
        return check_seed(_parse(text, int, "a whole number"))  # the library's rule
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser():
    """The argument parser of the ``cymlp`` command."""
    parser = _Parser(
        prog="cymlp", description="Multi-layer perceptrons with a compiled core.")
    parser.add_argument("--version", action=_VersionAction,
                        help="show the version and the backend, and exit")
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
    demo.add_argument("--seed", type=_seed, default=0,
                      help="seed of the initial weights (uniform(-0.5, 0.5) in the tutorial's "
                           "network) and of the noisy or shifted copies (default: 0)")
    _add_backend_option(demo)
    demo.add_argument("--letters", type=demo_letters, default=DEMO_LETTERS,
                      help="the letters to learn: two or more distinct letters A-Z, e.g. "
                           "ABCDEFGHIJ (default: ABC)")
    demo.add_argument("--noise", type=pixel_noise, default=None, metavar="P",
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
    demo.add_argument("--plot", type=plot_path, default=None, metavar="FILE.png",
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
    train.add_argument("--seed", type=_seed, default=0, help="default: 0")
    train.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    _add_backend_option(train)
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--out", default="model.npz", help="model file to write "
                       "(default: model.npz)")
    train.set_defaults(run=run_train)

    predict = _add_model_command(
        commands, "predict", run_predict, "data: .csv, .npy or .npz",
        help="predict with a saved model",
        description="Predict the target for every row of a data file with a model saved by "
                    "'cymlp train'. CSV columns are matched by name; a target column, if "
                    "present, is ignored. Writes CSV: the prediction and, for classifiers, "
                    "one probability column per class.")
    predict.add_argument("--out", default=None, help="CSV file to write (default: stdout)")
    _add_backend_option(predict)

    evaluate = _add_model_command(
        commands, "evaluate", run_evaluate, "labelled data: .csv, .npy or .npz",
        help="accuracy, loss and confusion matrix of a saved model on data",
        description="Evaluate a model saved by 'cymlp train' on labelled data: the loss, and "
                    "for classifiers the accuracy and the confusion matrix (rows: true "
                    "class, columns: predicted class).")
    evaluate.add_argument("--target", required=True, help="target column (or index, or array)")
    _add_backend_option(evaluate)

    info = commands.add_parser(
        "info", help="describe a saved model",
        description="Print a saved model's architecture, parameter count, options and a "
                    "summary of its training history.")
    info.add_argument("model", help="model file (.npz)")
    info.set_defaults(run=run_info)
    return parser


def _add_backend_option(command):
    command.add_argument("--backend", choices=("auto", "cython", "numpy"), default=None,
                         help="kernel backend (default: $CYMLP_BACKEND, else auto)")


def _add_model_command(commands, name, run, data_help, **texts):
    """A command on a model saved by 'cymlp train' and a data file."""
    command = commands.add_parser(name, **texts)
    command.add_argument("model", help="model file (.npz) from 'cymlp train'")
    command.add_argument("data", help=data_help)
    command.set_defaults(run=run)
    return command


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
    """``0.2.0 (backend: cython)``: the version, and the backend commands use here."""
    from .. import __version__
    from .._backend import available_backends
    available = available_backends()
    chosen = os.environ.get("CYMLP_BACKEND", "auto").lower()
    backend = chosen if chosen in available else available[0]
    missing = "" if "cython" in available else "; the compiled backend is not available"
    return f"{__version__} (backend: {backend}{missing})"


class _VersionAction(argparse.Action):
    """``--version``, which loads the backends only when it is given."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(f"{parser.prog} {_version()}\n")   # on stdout, as argparse's own
        parser.exit()


# ---------------------------------------------------------------- train / predict

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
    from .._io import save_network
    directory = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(directory):  # say so before training, not after
        raise CLIError(f"cannot save to {args.out!r}: directory {directory!r} does not exist")
    if os.path.isdir(args.out):
        raise CLIError(f"cannot save to {args.out!r}: it is a directory; name a file, "
                       "e.g. --out model.npz")
    if args.momentum and args.optimizer != "sgd":
        raise CLIError("--momentum applies to --optimizer sgd")
    table = read_table(args.data, target=args.target)
    Y, output_activation, classes = encode_target(table.target, args.loss, args.data,
                                                  args.target)
    X = table.features
    if args.no_standardize:
        mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
    else:
        mean, scale = feature_statistics(X, args.data)
    X = standardise(X, mean, scale, args.data)
    learning_rate = args.learning_rate or (0.001 if args.optimizer == "adam" else 0.01)
    check_backend(args.backend)
    net = MLP([X.shape[1], *args.hidden, Y.shape[1]], activation=args.activation,
              output_activation=output_activation, loss=args.loss,
              init="he_uniform" if args.activation in ("relu", "leaky_relu") else "glorot_uniform",
              dtype=np.dtype(args.dtype).type, seed=args.seed, backend=args.backend)
    options = dict(epochs=args.epochs, learning_rate=learning_rate, batch_size=args.batch_size,
                   optimizer=args.optimizer, validation_split=args.validation_split,
                   early_stopping=args.early_stopping)
    if args.optimizer == "sgd":
        options["momentum"] = args.momentum
    progress = _Progress(args.epochs, args.quiet)
    # Any other ValueError or TypeError from fit is a bug: the data and the
    # other options were checked above and by the argument parser.
    try:
        with reported(TrainingDiverged), reported(*BAD_ARGUMENT, about=FIT_CHECKED_OPTIONS):
            history = net.fit(X, Y, callback=progress, **options)
    finally:
        progress.close()
    extra = {"cli": {
        "task": "regression" if classes is None else "classification",
        "classes": None if classes is None else [plain_label(c) for c in classes],
        "feature_names": table.feature_names,
        "target": args.target,
    }}
    # A model save refuses (e.g. metadata too large for thousands of class
    # names) is a user error too; the message says why.
    with reported(*BAD_FILE, ValueError, prefix="--out: "):
        save_network(net, args.out, extra=extra,
                     arrays={"feature_mean": mean, "feature_scale": scale})
    summary = f"Saved {args.out}: {net!r}; final {history.summary()}"
    if history.stopped_early:
        summary += f" (stopped early; kept epoch {history.best_epoch})"
    print(summary)
    return 0


def run_predict(args):
    """Write predictions for a data file."""
    net, settings, mean, scale = load_model(args.model, args.backend)
    table = read_table(args.data, feature_names=settings["feature_names"])
    outputs = net.predict(standardise(table.features, mean, scale, args.data))
    classes = settings["classes"]
    if classes is None:
        header, rows = ["prediction"], [[repr(float(value))] for value in outputs[:, 0]]
    else:
        header = ["prediction"] + [f"p_{label}" for label in classes]
        rows = [[str(classes[index])] + [f"{value:.6g}" for value in p]
                for index, p in zip(classify(outputs), class_probabilities(net, outputs))]
    if not args.out:
        _write_csv(sys.stdout, header, rows)
        return 0
    with reported(*BAD_FILE, prefix="--out: "), \
            open(args.out, "w", newline="", encoding="utf-8") as file:
        _write_csv(file, header, rows)
    print(f"Wrote {len(rows)} predictions to {args.out}")
    return 0


def _write_csv(file, header, rows):
    writer = csv.writer(file)
    writer.writerow(header)
    writer.writerows(rows)


def run_evaluate(args):
    """Loss, accuracy and confusion matrix on labelled data."""
    net, settings, mean, scale = load_model(args.model, args.backend)
    table = read_table(args.data, target=args.target, feature_names=settings["feature_names"])
    X = standardise(table.features, mean, scale, args.data)
    classes = settings["classes"]
    if classes is None:
        if table.target.dtype.kind != "f":
            raise CLIError(f"{args.data}: the target holds text; this model is a regression")
        Y = table.target[:, None]
        print(f"Rows: {len(Y)}")
        print(f"Loss (mse): {net.loss(X, Y):.6f}")
        return 0
    Y = encode_for_model(table.target, net, classes, args.data)
    truth, predicted = classify(Y), classify(net.predict(X))
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
    net, extra, _ = load_saved(args.model)
    history = net.history
    print(f"Model: {args.model}")
    print(f"Architecture: {' -> '.join(map(str, net.layer_sizes))} "
          f"({', '.join(net.activations)})")
    print(f"Parameters: {net.n_params} ({np.dtype(net.dtype).name}), "
          f"bias: {'yes' if net.bias else 'no'}")
    print(f"Loss: {net.loss_name}; optimizer steps taken: {net.state_dict()['step']}")
    settings = extra.get("cli") if isinstance(extra, dict) else None
    if isinstance(settings, dict):  # written by 'cymlp train'; shown only where well-formed
        print(f"Target: {settings.get('target')} ({settings.get('task')})")
        classes = settings.get("classes")
        if isinstance(classes, list):
            print(f"Classes: {', '.join(map(str, classes))}")
        names = settings.get("feature_names")
        names = names if isinstance(names, list) else []
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
    """Run the command line; returns the exit status.

    A ``CLIError`` (the user's mistake) is printed as one line on stderr and
    gives status 2, Ctrl-C status 130, a closed output pipe status 0. Every
    other exception propagates with its traceback: it is a bug.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CLIError as error:
        print(f"cymlp {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (e.g. `cymlp demo | head`): stop quietly.
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print(f"cymlp {args.command}: interrupted", file=sys.stderr)
        return 130
