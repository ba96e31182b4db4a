"""The ``cymlp`` command line: argument parsing, the commands and ``main``.

``cymlp demo`` trains the tutorial's 30-5-3 letters network and prints what
the tutorial prints (``_demo.py``); ``train``, ``predict``, ``evaluate`` and
``info`` work on data files and saved models (their tables, standardisation
and target encoding are in ``_tabular.py``); ``export`` writes a saved model
as an ONNX graph (``cymlp/onnx.py``).

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
from .._codes import INITIALIZERS, LOSS_OUTPUTS, OUTPUT_ACTIVATIONS, classify
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
from ._errors import (
    BAD_ARGUMENT,
    BAD_FILE,
    MISSING_EXTRA,
    CLIError,
    check_backend,
    check_output_file,
    reported,
)
from ._tabular import (
    class_probabilities,
    encode_for_model,
    encode_target,
    feature_statistics,
    load_model,
    load_saved,
    plain_label,
    plain_model_settings,
    read_table,
    saved_by_train,
    standardise,
    train_settings,
)

__all__ = ["main", "build_parser", "CLIError"]

# The options of 'cymlp train' that only MLP.fit can judge (validation_split
# against the number of rows); its messages name the argument first, which
# the command line reports as the option's flag.
FIT_CHECKED_OPTIONS = ("validation_split", "early_stopping", "momentum", "weight_decay")

# Output activations 'cymlp train --loss mse' may use (the first is the default);
# the classification losses each have one (LOSS_OUTPUTS).
REGRESSION_OUTPUTS = ("identity",) + tuple(name for name in LOSS_OUTPUTS["mse"]
                                           if name != "identity" and name != "softmax")


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


def _non_negative_float(text):
    value = _parse(text, float, "a number")
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _share(text):
    """A fraction of the rows, 0 <= S < 1 (``--validation-split``)."""
    value = _parse(text, float, "a share of the rows such as 0.2")
    if not 0.0 <= value < 1.0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"expected a share of the rows 0 <= S < 1, got {text}")
    return value


def _momentum(text):
    value = _parse(text, float, "a number")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a momentum 0 <= M < 1, got {text}")
    return value


def _test_size(text):
    """``--test-size``: a share of the rows (0 < S < 1) or a number of rows (>= 1)."""
    try:
        value = int(text)
    except ValueError:
        value = _parse(text, float, "a share of the rows such as 0.2, or a number of rows")
        if not 0.0 < value < 1.0:
            raise argparse.ArgumentTypeError(f"expected a share of the rows 0 < S < 1 or a "
                                             f"whole number of rows, got {text}") from None
        return value
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a share of the rows 0 < S < 1 or a number "
                                         f"of rows >= 1, got {text}")
    return value


def _column_list(text):
    """``--features``/``--drop``: comma-separated column names or indices."""
    columns = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in columns):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names or indices "
                                         f"such as id,name or 0,3; got {text!r}")
    return columns


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
                    "need a header row naming the columns (or --no-header); a UTF-8 "
                    "byte-order mark (Excel's \"CSV UTF-8\") is skipped and ';' or tab "
                    "separators are recognised. The target column may hold class names or "
                    "numbers. Every other column is a feature, except one named like a row "
                    "identifier (id, ID, Id, or pandas' unnamed index), which is left out "
                    "with a note: choose the columns with --features or --drop. For .npy "
                    "files columns are given by index, for .npz files the target is the "
                    "name of an array beside the features array 'X'. Features are "
                    "standardised (mean 0, variance 1) with statistics stored in the model.",
        epilog="examples: cymlp train iris.csv --target species --test-size 0.2; "
               "cymlp train houses.csv --target price --loss mse --drop id,street; "
               "cymlp train table.csv --no-header --target -1")
    train.add_argument("data", help="training data: .csv, .npy or .npz")
    train.add_argument("--target", required=True,
                       help="target column: its name, or its index (0 is the first column, "
                            "-1 the last); for .npz files the name of an array")
    columns = train.add_mutually_exclusive_group()
    columns.add_argument("--features", type=_column_list, default=None, metavar="COLUMNS",
                         help="the feature columns to use, comma-separated names or indices "
                              "(default: every column but the target and an id column)")
    columns.add_argument("--drop", type=_column_list, default=None, metavar="COLUMNS",
                         help="columns not to use as features, comma-separated names or "
                              "indices, e.g. --drop id,name")
    train.add_argument("--no-header", action="store_true",
                       help="the CSV file has no header row: give columns by index, e.g. "
                            "--target 0")
    train.add_argument("--test-size", type=_test_size, default=None, metavar="S",
                       help="hold out a share (0 < S < 1) or a number of rows, never trained "
                            "on, and report the model's score on them; stratified by class "
                            "for classifiers and drawn with --seed (default: none)")
    train.add_argument("--hidden", type=_layer_list, default=[64],
                       help="hidden layer widths, comma-separated, e.g. 64,32; 'none' for no "
                            "hidden layer (a linear or logistic model) (default: 64)")
    train.add_argument("--activation", default="relu",
                       choices=("relu", "tanh", "sigmoid", "leaky_relu", "identity"),
                       help="hidden activation (default: relu)")
    train.add_argument("--output-activation", default=None,
                       choices=tuple(name for name in OUTPUT_ACTIVATIONS if name != "exp"),
                       help="output activation (default: softmax for cross_entropy, sigmoid "
                            f"for bce, identity for mse; mse also takes "
                            f"{', '.join(REGRESSION_OUTPUTS[1:])})")
    train.add_argument("--loss", default="cross_entropy", choices=("cross_entropy", "bce", "mse"),
                       help="cross_entropy: classes (softmax); bce: two classes (sigmoid); "
                            "mse: numeric target, regression (default: cross_entropy)")
    train.add_argument("--init", default=None, choices=INITIALIZERS,
                       help="weight initialiser (default: he_uniform for relu and leaky_relu, "
                            "else glorot_uniform); biases start at zero")
    train.add_argument("--optimizer", default="adam", choices=("adam", "sgd"),
                       help="default: adam")
    train.add_argument("--learning-rate", type=_positive_float, default=None,
                       help="default: 0.001 for adam, 0.01 for sgd")
    train.add_argument("--momentum", type=_momentum, default=0.0,
                       help="SGD momentum, 0 <= M < 1 (default: 0)")
    train.add_argument("--weight-decay", type=_non_negative_float, default=0.0,
                       help="L2 penalty added to the gradient, weight_decay * parameters, as "
                            "in torch.optim (default: 0)")
    train.add_argument("--epochs", type=_positive_int, default=30, help="default: 30")
    train.add_argument("--batch-size", type=_positive_int, default=32, help="default: 32")
    train.add_argument("--validation-split", type=_share, default=0.0,
                       help="share of the training rows held out to report validation "
                            "figures each epoch, 0 <= S < 1 (default: 0)")
    train.add_argument("--early-stopping", action="store_true",
                       help="stop when the validation loss stops improving (needs "
                            "--validation-split) and keep the best epoch")
    train.add_argument("--no-standardize", action="store_true",
                       help="use the features as they are")
    train.add_argument("--seed", type=_seed, default=0,
                       help="seed of the initial weights, the shuffles and the --test-size "
                            "rows (default: 0)")
    train.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    _add_backend_option(train)
    train.add_argument("--quiet", action="store_true",
                       help="no progress output (notes about the columns still show)")
    train.add_argument("--out", default="model.npz", help="model file to write "
                       "(default: model.npz)")
    train.set_defaults(run=run_train)

    predict = _add_model_command(
        commands, "predict", run_predict, "data: .csv, .npy or .npz",
        help="predict with a saved model",
        description="Predict the target for every row of a data file with a saved model. "
                    "For a model from 'cymlp train', CSV columns are matched by name and a "
                    "target column, if present, is ignored. A model saved from Python "
                    "(MLP.save) takes the file's columns as they are, unstandardised; its "
                    "classes are the output indices 0..k-1. Writes CSV: the prediction and, "
                    "for classifiers, one probability column per class.")
    predict.add_argument("--out", default=None, help="CSV file to write (default: stdout)")
    _add_backend_option(predict)

    evaluate = _add_model_command(
        commands, "evaluate", run_evaluate, "labelled data: .csv, .npy or .npz",
        help="accuracy, loss and confusion matrix of a saved model on data",
        description="Evaluate a saved model on labelled data: the loss, and for classifiers "
                    "the accuracy and the confusion matrix (rows: true class, columns: "
                    "predicted class). For a model saved from Python (MLP.save) the target "
                    "of a classifier is the class index 0..k-1.")
    evaluate.add_argument("--target", required=True,
                          help="target column: its name or index (for .npz, an array)")
    _add_backend_option(evaluate)

    info = commands.add_parser(
        "info", help="describe a saved model",
        description="Print a saved model's architecture, parameter count, options and a "
                    "summary of its training history.")
    info.add_argument("model", help="model file (.npz)")
    info.set_defaults(run=run_info)

    export = commands.add_parser(
        "export", help="convert a saved model to ONNX",
        description="Write a saved model as an ONNX graph of standard operators (input 'X' "
                    "of shape [N, n_features], any batch size N). A model saved by 'cymlp "
                    "train' keeps its standardisation, (X - mean) / scale, inside the graph, "
                    "so X holds the raw features in the order of the training columns; a "
                    "classifier's graph outputs 'probabilities' (one column per class) and "
                    "'label' (the predicted class: int64 when every class name is a whole "
                    "number, else strings), a regression's 'Y'. Any other model file gives "
                    "the network alone, with output 'Y'. An existing output file is "
                    "replaced. Needs onnx: pip install \"cymlp[onnx]\".",
        epilog="example: cymlp export model.npz model.onnx --dtype float32")
    export.add_argument("model", help="model file (.npz)")
    export.add_argument("out", help="ONNX file to write (conventionally .onnx)")
    export.add_argument("--dtype", choices=("float32", "float64"), default=None,
                        help="element type of the graph (default: the model's)")
    export.set_defaults(run=run_export)
    return parser


def _add_backend_option(command):
    command.add_argument("--backend", choices=("auto", "cython", "numpy"), default=None,
                         help="kernel backend (default: $CYMLP_BACKEND, else auto)")


def _add_model_command(commands, name, run, data_help, **texts):
    """A command on a model saved by 'cymlp train' and a data file."""
    command = commands.add_parser(name, **texts)
    command.add_argument("model", help="model file (.npz) from 'cymlp train' or MLP.save")
    command.add_argument("data", help=data_help)
    command.add_argument("--no-header", action="store_true",
                         help="the CSV file has no header row (implied for a model trained "
                              "with --no-header)")
    command.add_argument("--drop", type=_column_list, default=None, metavar="COLUMNS",
                         help="for a model saved from Python (MLP.save): columns of the data "
                              "that are not features, comma-separated names or indices")
    command.set_defaults(run=run)
    return command


def _layer_list(text):
    if text.strip().lower() == "none":
        return []
    if not text.strip():
        raise argparse.ArgumentTypeError("expected comma-separated layer widths such as "
                                         "64,32, got ''; for no hidden layer say 'none'")
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

def epoch_summary(history, classifier, epoch=-1):
    """One line on an epoch; a regression's has no accuracy (it means nothing there)."""
    if classifier:
        return history.summary(epoch)
    number = history.epochs if epoch == -1 else epoch + 1
    text = f"Epoch: {number}, Loss: {history.loss[epoch]:.6f}"
    if history.val_loss:
        text += f", Val loss: {history.val_loss[epoch]:.6f}"
    return text


class _Progress:
    """Per-epoch progress on stderr: a tqdm bar when tqdm is installed, else lines."""

    def __init__(self, epochs, quiet, classifier=True, notes=()):
        self.epochs, self.quiet, self.classifier, self.notes = epochs, quiet, classifier, notes
        self.bar = None

    def __call__(self, epoch, history):
        if epoch == 1:  # after fit validated its options: an error is still one line
            for note in self.notes:  # about the data: shown even with --quiet
                print(f"cymlp train: note: {note}", file=sys.stderr, flush=True)
        if self.quiet:
            return
        if epoch == 1:  # created with the first epoch, after fit validated its options
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=self.epochs, unit="epoch", file=sys.stderr)
            except ImportError:
                self.bar = None
        figures = {"loss": f"{history.loss[-1]:.4f}"}
        if self.classifier:
            figures["acc"] = f"{history.accuracy[-1]:.3f}"
        if history.val_loss:
            figures["val_loss"] = f"{history.val_loss[-1]:.4f}"
            if self.classifier:
                figures["val_acc"] = f"{history.val_accuracy[-1]:.3f}"
        if self.bar is not None:
            self.bar.set_postfix(figures, refresh=False)
            self.bar.update(1)
        else:
            print(epoch_summary(history, self.classifier), file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _flag_message(error):
    """A message of MLP.fit's argument checks, in the command line's terms."""
    text = str(error)
    for name in FIT_CHECKED_OPTIONS:
        if text.startswith(name):
            flag = "--" + name.replace("_", "-")
            rest = text[len(name):]
            if rest.startswith("=True"):
                rest = rest[len("=True"):]
            elif rest.startswith("="):
                rest = " " + rest[1:]
            rest = rest.replace("validation_split", "--validation-split")
            return flag + rest
    return text


def held_out_rows(n_rows, test_size, labels, seed):
    """``(training rows, test rows)`` for ``--test-size``: sorted indices.

    ``test_size`` is a share of the rows (rounded up) or a number of them.
    With ``labels`` (a classifier's class per row) each class gives its share
    of the test rows (largest remainders first) and keeps at least one
    training row. The rows are drawn from ``numpy.random.default_rng`` on
    ``seed``, apart from the generator of the network's weights.
    """
    n_test = int(np.ceil(test_size * n_rows)) if isinstance(test_size, float) else test_size
    if n_test >= n_rows:
        raise CLIError(f"--test-size {test_size} leaves no training rows out of {n_rows}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    if labels is None:
        test = rng.choice(n_rows, size=n_test, replace=False)
    else:
        classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        share = n_test * counts / n_rows
        take = np.minimum(np.floor(share).astype(np.int64), counts - 1)
        room = counts - 1 - take
        # Largest remainders first (ties: the larger class), where a class has rows to spare.
        order = sorted(range(len(classes)), key=lambda c: (-(share[c] - take[c]), -counts[c]))
        missing = n_test - int(take.sum())
        for c in order * 2:
            if missing == 0:
                break
            if room[c] > 0:
                take[c] += 1
                room[c] -= 1
                missing -= 1
        if missing:
            raise CLIError(f"--test-size {test_size}: {n_test} test rows would leave a class "
                           "without training rows")
        test = np.concatenate([rng.choice(np.flatnonzero(inverse.reshape(-1) == c),
                                          size=int(take[c]), replace=False)
                               for c in range(len(classes))])
    mask = np.zeros(n_rows, dtype=bool)
    mask[test] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _score(net, X, Y, classifier):
    """The held-out figures of a trained network: loss, and a classifier's accuracy."""
    figures = {"rows": int(len(X)), "loss": float(net.loss(X, Y))}
    if classifier:
        figures["accuracy"] = float(np.mean(classify(net.predict(X)) == classify(Y)))
    else:
        total = float(np.sum((Y - Y.mean()) ** 2))
        figures["r2"] = (1.0 - figures["loss"] * len(Y) / total) if total > 0 else None
    return figures


def _describe_score(figures, loss_name):
    """``_score``'s figures in words (as saved in a model: each shown if it is a number)."""
    def number(key):
        value = figures.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    text = f"{figures['rows']} held-out rows: "
    if number("accuracy") is not None:
        text += f"accuracy {100 * number('accuracy'):.2f}%, "
    text += f"loss ({loss_name}) {figures['loss']:.6f}"
    if number("r2") is not None:
        text += f", R^2 {number('r2'):.4f}"
    return text


def _output_activation(args):
    """The output activation for ``--loss`` and ``--output-activation``."""
    if args.loss == "mse":
        allowed = REGRESSION_OUTPUTS
    else:
        allowed = LOSS_OUTPUTS[args.loss]
    if args.output_activation is None:
        return allowed[0]
    if args.output_activation not in allowed:
        raise CLIError(f"--output-activation {args.output_activation} does not go with "
                       f"--loss {args.loss}, which needs "
                       f"{'one of ' if len(allowed) > 1 else ''}{', '.join(allowed)}")
    return args.output_activation


def run_train(args):
    """Train on a data file and save the model."""
    from .._io import save_network
    check_output_file(args.out, "--out", "model.npz")  # say so before training, not after
    if args.momentum and args.optimizer != "sgd":
        raise CLIError("--momentum applies to --optimizer sgd")
    if args.early_stopping and not args.validation_split:
        raise CLIError("--early-stopping needs --validation-split > 0 (the rows whose loss "
                       "it watches)")
    output_activation = _output_activation(args)
    table = read_table(args.data, target=args.target, header=not args.no_header,
                       features=args.features, drop=args.drop)
    Y, _, classes = encode_target(table.target, args.loss, args.data, table.target_name)
    classifier = classes is not None
    X = table.features
    test_rows = None
    if args.test_size is not None:
        train_rows, test_rows = held_out_rows(len(X), args.test_size,
                                              classify(Y) if classifier else None, args.seed)
        X, Y, X_test, Y_test = X[train_rows], Y[train_rows], X[test_rows], Y[test_rows]
    if args.no_standardize:
        mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
    else:
        mean, scale = feature_statistics(X, args.data)  # of the training rows only
    X = standardise(X, mean, scale, args.data)
    learning_rate = args.learning_rate or (0.001 if args.optimizer == "adam" else 0.01)
    check_backend(args.backend)
    init = args.init or ("he_uniform" if args.activation in ("relu", "leaky_relu")
                         else "glorot_uniform")
    net = MLP([X.shape[1], *args.hidden, Y.shape[1]], activation=args.activation,
              output_activation=output_activation, loss=args.loss, init=init,
              dtype=np.dtype(args.dtype).type, seed=args.seed, backend=args.backend)
    options = dict(epochs=args.epochs, learning_rate=learning_rate, batch_size=args.batch_size,
                   optimizer=args.optimizer, validation_split=args.validation_split,
                   early_stopping=args.early_stopping)
    if args.optimizer == "sgd":
        options["momentum"] = args.momentum
    if args.weight_decay:
        options["weight_decay"] = args.weight_decay
    progress = _Progress(args.epochs, args.quiet, classifier, table.notes)
    # Any other ValueError or TypeError from fit is a bug: the data and the
    # other options were checked above and by the argument parser.
    try:
        with reported(TrainingDiverged):
            try:
                history = net.fit(X, Y, callback=progress, **options)
            except BAD_ARGUMENT as error:
                if not str(error).startswith(FIT_CHECKED_OPTIONS):
                    raise
                raise CLIError(_flag_message(error)) from error
    finally:
        progress.close()
    test = None
    if test_rows is not None:
        test = _score(net, standardise(X_test, mean, scale, args.data), Y_test, classifier)
    extra = {"cli": {
        "task": "classification" if classifier else "regression",
        "classes": None if classes is None else [plain_label(c) for c in classes],
        "feature_names": table.feature_names,
        "target": table.target_name,
        "header": not args.no_header,
        "source_columns": table.n_columns,
        "test": test,
    }}
    # A model save refuses (e.g. metadata too large for thousands of class
    # names) is a user error too; the message says why.
    with reported(*BAD_FILE, ValueError, prefix="--out: "):
        save_network(net, args.out, extra=extra,
                     arrays={"feature_mean": mean, "feature_scale": scale})
    summary = f"Saved {args.out}: {net!r}; final {epoch_summary(history, classifier)}"
    if history.stopped_early:
        summary += f" (stopped early; kept epoch {history.best_epoch})"
    print(summary)
    if test is not None:
        print(f"Test: {_describe_score(test, net.loss_name)}")
    return 0


def _read_for_model(args, net, settings, target=None):
    """The data file's features for ``net`` (standardised as in training) and target."""
    header = not args.no_header and settings.get("header", True) is not False
    if settings.get("plain"):
        table = read_table(args.data, target=target, header=header, drop=args.drop,
                           identifiers=False)
        if table.features.shape[1] != net.layer_sizes[0]:
            raise CLIError(f"{args.data}: {table.features.shape[1]} feature columns, the model "
                           f"expects {net.layer_sizes[0]} (a model saved from Python takes "
                           "every column but the target as a feature, as it is; leave "
                           "others out with --drop)")
        return table.features, table
    if args.drop:
        raise CLIError(f"--drop applies to models saved from Python; {args.model} was saved "
                       "by 'cymlp train' and picks its feature columns itself")
    source_columns = settings.get("source_columns")
    table = read_table(args.data, target=target, feature_names=settings["feature_names"],
                       header=header,
                       source_columns=source_columns if isinstance(source_columns, int)
                       else None)
    return table.features, table


def run_predict(args):
    """Write predictions for a data file."""
    net, settings, mean, scale = load_model(args.model, args.backend)
    if args.out:
        check_output_file(args.out, "--out", "predictions.csv")
    X, _ = _read_for_model(args, net, settings)
    if mean is not None:
        X = standardise(X, mean, scale, args.data)
    outputs = net.predict(X)
    classes = settings["classes"]
    if classes is None and outputs.shape[1] == 1:
        header, rows = ["prediction"], [[repr(float(value))] for value in outputs[:, 0]]
    elif classes is None:
        header = [f"output_{j}" for j in range(outputs.shape[1])]
        rows = [[repr(float(value)) for value in row] for row in outputs]
    else:
        # Probabilities where the outputs are (softmax, sigmoid), else the raw outputs.
        probabilities = net.activations[-1] in ("softmax", "sigmoid") and (
            net.loss_name != "mse" or net.activations[-1] == "softmax")
        prefix = "p_" if probabilities else "output_"
        values = class_probabilities(net, outputs) if probabilities else outputs
        header = ["prediction"] + [f"{prefix}{label}" for label in classes]
        rows = [[str(classes[index])] + [f"{value:.6g}" for value in p]
                for index, p in zip(classify(outputs), values)]
    if not args.out:
        _write_csv(sys.stdout, header, rows)
        return 0
    with reported(*BAD_FILE, prefix=f"--out: cannot write {args.out!r}: "), \
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
    X, table = _read_for_model(args, net, settings, target=args.target)
    if mean is not None:
        X = standardise(X, mean, scale, args.data)
    classes = settings["classes"]
    if classes is None:
        if net.layer_sizes[-1] != 1:
            raise CLIError(f"{args.model}: a model with {net.layer_sizes[-1]} outputs and "
                           f"loss {net.loss_name} is neither a classifier nor a one-column "
                           "regression; evaluate it in Python")
        if table.target.dtype.kind != "f":
            raise CLIError(f"{args.data}: the target holds text; this model is a regression")
        Y = table.target[:, None]
        print(f"Rows: {len(Y)}")
        print(f"Loss ({net.loss_name}): {net.loss(X, Y):.6f}")
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
          f"bias: {'yes' if net.bias else 'no'}, init: {net.init}")
    print(f"Loss: {net.loss_name}; optimizer steps taken: {net.state_dict()['step']}")
    settings = extra.get("cli") if isinstance(extra, dict) else None
    classifier = plain_model_settings(net)["classes"] is not None
    if isinstance(settings, dict):  # written by 'cymlp train'; shown only where well-formed
        classifier = settings.get("task") != "regression"
        print(f"Target: {settings.get('target')} ({settings.get('task')})")
        classes = settings.get("classes")
        if isinstance(classes, list):
            print(f"Classes: {', '.join(map(str, classes))}")
        names = settings.get("feature_names")
        names = names if isinstance(names, list) else []
        shown = ", ".join(map(str, names[:10])) + (", ..." if len(names) > 10 else "")
        print(f"Features: {len(names)} ({shown})")
    else:
        print("Saved from Python (no command-line metadata): 'cymlp predict' and 'evaluate' "
              "take the data's columns as they are")
    if history.epochs:
        print(f"Training: {history.epochs} epochs; last {epoch_summary(history, classifier)}")
        best = int(np.argmin(history.loss))
        print(f"Lowest training loss {history.loss[best]:.6f} in epoch {best + 1}")
        if history.stopped_early:
            print(f"Stopped early; weights of epoch {history.best_epoch} kept")
    else:
        print("Training: none recorded")
    test = settings.get("test") if isinstance(settings, dict) else None
    if isinstance(test, dict) and isinstance(test.get("rows"), int) and isinstance(
            test.get("loss"), (int, float)):
        print(f"Test: {_describe_score(test, net.loss_name)}")
    return 0


def run_export(args):
    """Write a saved model as an ONNX file."""
    from .._io import write_file_atomically
    # Checked before the model is read, as 'train' checks --out before training.
    directory = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(directory):
        raise CLIError(f"cannot write {args.out!r}: directory {directory!r} does not exist")
    if os.path.isdir(args.out):
        raise CLIError(f"cannot write {args.out!r}: it is a directory; name a file, "
                       "e.g. model.onnx")
    from ..onnx import _onnx, model_with_preprocessing
    with reported(*MISSING_EXTRA):
        _onnx()   # before the model is read: say at once that the extra is missing
    net, extra, arrays = load_saved(args.model)
    dtype = None if args.dtype is None else np.dtype(args.dtype).type
    if saved_by_train(extra, arrays):
        settings, mean, scale = train_settings(args.model, net, extra, arrays)
        classes = settings["classes"]
        if classes is not None and not (all(isinstance(c, int) for c in classes)
                                        or all(isinstance(c, str) for c in classes)):
            # Class names with fractions (0.5, 1, 1.5): ONNX labels are int64
            # or strings, so they become the text 'cymlp predict' prints.
            classes = [str(c) for c in classes]
        model = model_with_preprocessing(net, dtype=dtype, mean=mean, scale=scale,
                                         classes=classes)
        kind = ("classifier: outputs 'probabilities', 'label'" if classes is not None
                else "regression: output 'Y'")
    else:
        model = model_with_preprocessing(net, dtype=dtype)
        kind = "network only (no 'cymlp train' metadata): output 'Y'"
    with reported(*BAD_FILE, prefix=f"cannot write {args.out!r}: "):
        write_file_atomically(args.out, lambda file: file.write(model.SerializeToString()))
    element = np.dtype(dtype or net.dtype).name
    print(f"Wrote {args.out}: {' -> '.join(map(str, net.layer_sizes))} ({element}), {kind}")
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
