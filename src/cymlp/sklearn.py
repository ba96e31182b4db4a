"""scikit-learn estimators on cymlp: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's parameters (names and defaults of
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``), train a
``cymlp.MLP`` on either backend, and work in pipelines, grid searches,
cross-validation, ``clone`` and pickling; both pass ``check_estimator``.

The update rule is scikit-learn's wherever cymlp can express it: the initial
weights are drawn from ``random_state`` exactly as scikit-learn draws them,
the gradient is rescaled to scikit-learn's loss convention, ``alpha`` becomes
``weight_decay = alpha / batch_size`` on that scale, and training stops by
scikit-learn's ``tol`` / ``n_iter_no_change`` rule. Each ``fit`` drives one
training session (``cymlp/_training.py``: one backend ``Trainer``) epoch by
epoch. With ``solver="sgd"``, ``shuffle=False`` and ``alpha=0`` the weights
equal scikit-learn's to rounding. What differs is listed in the class
docstrings (Notes).

scikit-learn is an optional dependency: ``pip install "cymlp[sklearn]"``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import warnings
from collections.abc import Sequence as SequenceABC
from types import SimpleNamespace
from typing import Optional, Sequence, Union

import numpy as np

try:
    from scipy.sparse import issparse
    from scipy.special import xlogy
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (
        check_classification_targets,
        type_of_target,
        unique_labels,
    )
    from sklearn.utils.validation import check_is_fitted, column_or_1d
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "cymlp.sklearn needs scikit-learn, which is not installed; "
        'install it with: pip install "cymlp[sklearn]"') from error

try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

from . import _training
from ._codes import classify
from ._network import MLP
from ._params import layer_views
from ._sparse import as_csr_rows, take_rows
from ._training import TrainingDiverged
from ._validation import (
    as_array,
    as_matrix,
    as_sample_weight,
    check_bool,
    check_choice,
    check_dtype,
    check_float,
    check_int,
)
from .optim import SGD, Adam

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names and cymlp's, to cymlp's.
_ACTIVATIONS = {
    "identity": "identity", "logistic": "sigmoid", "sigmoid": "sigmoid", "tanh": "tanh",
    "relu": "relu", "leaky_relu": "leaky_relu",
}
# cymlp's output activations under the names scikit-learn's out_activation_ uses.
_OUT_ACTIVATION_NAMES = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity",
                         "exp": "exp"}
_SOLVERS = ("lbfgs", "sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
# The fitted attributes only the stochastic solvers set.
_STOCHASTIC_RECORDS = ("loss_curve_", "best_loss_", "validation_scores_",
                       "validation_loss_curve_", "best_validation_score_")
_BACKENDS = ("auto", "cython", "numpy")
_INT32_MAX = np.iinfo(np.int32).max


# The target types scikit-learn's classifiers accept (check_classification_targets).
_CLASSIFICATION_TARGETS = ("binary", "multiclass", "multiclass-multioutput",
                           "multilabel-indicator", "multilabel-sequences")


def _binarize(y, classes):
    """``LabelBinarizer().fit(classes).transform(y)`` for labels ``y`` among ``classes``.

    ``classes`` sorted, as ``classes_`` is; int one-hot rows, or for two
    classes the one 0/1 column of the second. (The binarizer's own transform
    checks the target type again and goes through a sparse matrix, at some
    fifty times the cost.)
    """
    indices = np.searchsorted(classes, y)
    if len(classes) <= 2:   # one class: a column of 0s, as LabelBinarizer gives
        return indices.astype(int).reshape(-1, 1)
    Y = np.zeros((len(y), len(classes)), dtype=int)
    Y[np.arange(len(y)), indices] = 1
    return Y


def _accuracy(y, predictions, sample_weight=None):
    """``accuracy_score(y, predictions, sample_weight)`` for targets ``fit`` has checked.

    The share of rows predicted exactly (every label of a row, for
    multilabel targets): a count over the number of rows, so the same float
    as scikit-learn's, which checks both arrays again, at some fifty times
    the cost.
    """
    if issparse(y) or issparse(predictions):   # sparse multilabel indicators
        return float(accuracy_score(y, predictions, sample_weight=sample_weight))
    matches = np.asarray(y == predictions)
    if matches.ndim == 2:
        matches = matches.all(axis=1)
    if sample_weight is not None:
        return float(np.average(matches, weights=sample_weight))
    return float(np.mean(matches))


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter that ``fit`` rejects (its message names it).

    Both a ``ValueError``, as scikit-learn's estimators raise for bad
    parameters, and a ``TypeError``, as cymlp's checks raise for a value of
    the wrong type (scikit-learn's own ``InvalidParameterError`` is both too).
    """


@contextlib.contextmanager
def _parameter_errors():
    """Re-raise the shared checks' errors (TypeError, ValueError) as InvalidParameterError."""
    try:
        yield
    except InvalidParameterError:
        raise
    except (TypeError, ValueError) as error:
        raise InvalidParameterError(str(error)) from None


def _fail(name, expected, value):
    raise InvalidParameterError(f"{name} must be {expected}; got {value!r}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


class _LayerArrays(SequenceABC):
    """``coefs_`` / ``intercepts_``: the network's weights or biases, one array per layer.

    Reading gives views into ``net_.params``; assigning an item,
    ``coefs_[i] = W``, copies ``W`` into the network (as assigning into
    scikit-learn's lists changes its model), once its shape is checked.
    """

    def __init__(self, arrays, name):
        self._arrays, self._name = arrays, name

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self._arrays)[index]
        return self._arrays[index]

    def __len__(self):
        return len(self._arrays)

    def __iter__(self):
        return iter(self._arrays)

    def __setitem__(self, index, value):
        positions = range(len(self))[index]  # IndexError or TypeError, as a list's
        if isinstance(index, slice):
            self.assign(value, positions)
        else:
            self.assign([value], [positions])

    def assign(self, arrays, positions=None):
        """Copy ``arrays`` into the layers at ``positions`` (default: all), all or none.

        Each array must have the shape of the one it replaces; it is
        converted to the network's dtype.
        """
        positions = range(len(self)) if positions is None else positions
        if isinstance(arrays, (np.ndarray, str, bytes)) or not hasattr(arrays, "__iter__"):
            raise TypeError(f"{self._name} takes a list of arrays, one per layer; got "
                            f"{type(arrays).__name__} (to set one layer: "
                            f"{self._name}[i] = array)")
        arrays = list(arrays)
        if len(arrays) != len(positions):
            raise ValueError(f"{self._name} holds {len(self)} arrays, one per layer; "
                             f"{len(arrays)} given for {len(positions)}")
        checked = [as_array(array, f"{self._name}[{position}]", self._arrays[position].dtype,
                            self._arrays[position].shape)
                   for position, array in zip(positions, arrays)]
        for position, array in zip(positions, checked):
            self._arrays[position][...] = array

    def __add__(self, other):
        return list(self) + list(other)

    def __radd__(self, other):
        return list(other) + list(self)

    def __reduce__(self):
        # A copy or a pickle is a plain list of arrays, detached from the network.
        return list, (list(self),)

    def __repr__(self):
        return repr(list(self))


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters and the training loop.

    ``__init__`` is written once here, with the defaults of both estimators;
    scikit-learn reads the parameter names from its signature.
    """

    _estimator_kind = None  # "classifier" or "regressor"
    _losses = ()  # the accepted names of the loss parameter

    def __init__(self, hidden_layer_sizes: Union[int, Sequence[int]] = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Union[int, str] = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True, random_state=None,
                 tol: float = 1e-4, verbose: Union[bool, int] = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: Union[int, float] = 10, max_fun: int = 15000,
                 loss: Optional[str] = None, restore_best_weights: bool = True,
                 backend: Optional[str] = None, dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.loss = loss
        self.restore_best_weights = restore_best_weights
        self.backend = backend
        self.dtype = dtype

    # ------------------------------------------------------------ parameters

    def _check_params(self):
        """The constructor parameters checked and normalised (a namespace).

        cymlp's shared checks (``cymlp/_validation.py``) where a parameter
        has one type; every error is an ``InvalidParameterError`` (a
        ``ValueError``, as scikit-learn raises) that names the parameter.
        """
        with _parameter_errors():
            return self._checked_params()

    def _checked_params(self):
        sizes = self.hidden_layer_sizes
        if _is_int(sizes):
            sizes = [check_int(sizes, "hidden_layer_sizes")]
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            _fail("hidden_layer_sizes", "a positive integer or a sequence of positive integers",
                  self.hidden_layer_sizes)
        sizes = [check_int(size, f"hidden_layer_sizes[{index}]")
                 for index, size in enumerate(sizes)]
        activation = check_choice(self.activation, "activation", tuple(_ACTIVATIONS))
        solver = check_choice(self.solver, "solver", _SOLVERS)
        if not (self.batch_size == "auto" if isinstance(self.batch_size, str)
                else _is_int(self.batch_size) and self.batch_size >= 1):
            _fail("batch_size", "'auto' or an integer >= 1", self.batch_size)
        if not isinstance(self.verbose, (bool, np.bool_)):
            check_int(self.verbose, "verbose", minimum=0)
        n_iter_no_change = self.n_iter_no_change
        if not (isinstance(n_iter_no_change, numbers.Real) and n_iter_no_change == math.inf):
            n_iter_no_change = check_int(n_iter_no_change, "n_iter_no_change")
        early_stopping = check_bool(self.early_stopping, "early_stopping")
        if self.random_state is not None and not isinstance(
                self.random_state, np.random.RandomState):
            if not _is_int(self.random_state) or not 0 <= self.random_state <= 2**32 - 1:
                _fail("random_state", "None, an integer in [0, 2**32 - 1] or a "
                      "numpy.random.RandomState", self.random_state)
        return SimpleNamespace(
            hidden_layer_sizes=sizes,
            activation=_ACTIVATIONS[activation],
            solver=solver,
            alpha=check_float(self.alpha, "alpha", inclusive_minimum=True),
            learning_rate=check_choice(self.learning_rate, "learning_rate", _LEARNING_RATES),
            learning_rate_init=check_float(self.learning_rate_init, "learning_rate_init"),
            power_t=check_float(self.power_t, "power_t", inclusive_minimum=True),
            max_fun=check_int(self.max_fun, "max_fun"),
            restore_best_weights=check_bool(self.restore_best_weights, "restore_best_weights"),
            class_weight=self._check_class_weight(),
            max_iter=check_int(self.max_iter, "max_iter"),
            shuffle=check_bool(self.shuffle, "shuffle"),
            tol=check_float(self.tol, "tol", inclusive_minimum=True),
            warm_start=check_bool(self.warm_start, "warm_start"),
            momentum=check_float(self.momentum, "momentum", maximum=1.0,
                                 inclusive_minimum=True),
            nesterovs_momentum=check_bool(self.nesterovs_momentum, "nesterovs_momentum"),
            early_stopping=early_stopping,
            # (0, 1) with early stopping, which needs a validation set; else [0, 1).
            validation_fraction=check_float(self.validation_fraction, "validation_fraction",
                                            maximum=1.0, inclusive_minimum=not early_stopping),
            beta_1=check_float(self.beta_1, "beta_1", maximum=1.0, inclusive_minimum=True),
            beta_2=check_float(self.beta_2, "beta_2", maximum=1.0, inclusive_minimum=True),
            epsilon=check_float(self.epsilon, "epsilon"),
            n_iter_no_change=n_iter_no_change,
            loss=None if self.loss is None else check_choice(self.loss, "loss", self._losses),
            backend=None if self.backend is None else check_choice(self.backend, "backend",
                                                                   _BACKENDS),
            dtype=None if self.dtype is None else check_dtype(self.dtype),
        )

    # ------------------------------------------------------------ fitting

    def _check_class_weight(self):
        return None   # the classifier's own (the regressor has no class_weight)

    def _is_stochastic(self):
        """partial_fit exists for the stochastic solvers only (scikit-learn's rule)."""
        if isinstance(self.solver, str) and self.solver.lower() == "lbfgs":
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _fit(self, X, y, incremental, classes=None, sample_weight=None):
        params = self._check_params()
        if incremental and params.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "net_") or (not params.warm_start and not incremental)
        X, y = _validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                              accept_sparse=True,
                              y_numeric=self._estimator_kind == "regressor", reset=first_pass)
        targets = self._encode_targets(y, params, first_pass, incremental, classes)
        dtype = (params.dtype or X.dtype.type) if first_pass else self.net_.dtype
        X = _features(X, dtype)
        Y = as_matrix(targets.Y, "y", dtype, what="outputs")
        sample_weight = self._sample_weight(sample_weight, targets, params, X.shape[0], dtype,
                                            incremental)
        loss, out_activation = self._loss_and_output(targets)
        layer_sizes = [X.shape[1]] + params.hidden_layer_sizes + [Y.shape[1]]
        if not first_pass:
            self._check_same_network(layer_sizes, params, loss, out_activation,
                                     "partial_fit" if incremental else "warm_start")

        # One RandomState per fit call, used in scikit-learn's order: initial
        # weights, validation split, then (cymlp's own) shuffling seed.
        random_state = check_random_state(self.random_state)
        if first_pass:
            initial = self._initial_parameters(layer_sizes, params, random_state)
        data = SimpleNamespace(X=X, Y=Y, weight=sample_weight, rows=None, X_val=None,
                               Y_val=None, y_val=None, weight_val=None)
        if params.early_stopping and params.solver != "lbfgs":
            self._split(data, targets, params, random_state)

        if first_pass:
            net = MLP(layer_sizes, activation=params.activation, output_activation=out_activation,
                      loss=loss, init="glorot_uniform", dtype=dtype,
                      seed=int(random_state.randint(_INT32_MAX)), backend=params.backend)
            for weights, biases, (coef, intercept) in zip(net.weights, net.biases, initial):
                weights[...] = coef
                biases[...] = intercept
            self._set_network(net, out_activation, params)
        else:
            if not incremental:
                # Warm start: keep the weights, start a fresh optimizer and a
                # new shuffling seed (as a new fit of scikit-learn's does).
                kept = self.net_.params.copy()
                self.net_.reset(seed=int(random_state.randint(_INT32_MAX)))
                self.net_.params[...] = kept
            if params.solver != "lbfgs":
                self._reset_stopping_records(params, only_if_switched=True)
        if params.solver == "lbfgs":
            self._run_lbfgs(data, params)
        else:
            if not incremental or not hasattr(self, "_sgd_learning_rate"):
                self._sgd_learning_rate = params.learning_rate_init   # scikit-learn's optimizer's
            self._run_epochs(data, params, incremental)
        return self

    def _sample_weight(self, sample_weight, targets, params, n_rows, dtype, incremental):
        """``sample_weight`` checked, times the class weights; None when neither is given."""
        weight = as_sample_weight(sample_weight, "sample_weight", dtype, n_rows)
        if params.class_weight is not None:
            if incremental and isinstance(params.class_weight, str):
                raise ValueError("class_weight='balanced' is not supported for partial_fit "
                                 "(the class frequencies of one call are not the data's); "
                                 "pass class_weight as a dict computed on all the data")
            class_weight = compute_sample_weight(params.class_weight, targets.y)
            weight = as_sample_weight(class_weight if weight is None else weight * class_weight,
                                      "sample_weight", dtype, n_rows)
        return weight

    def _set_network(self, net, out_activation, params):
        """Fitted attributes of a new network, and the convergence records reset."""
        self.net_ = net
        self.n_outputs_ = net.layer_sizes[-1]
        self.n_layers_ = len(net.layer_sizes)
        self.out_activation_ = _OUT_ACTIVATION_NAMES[out_activation]
        self.n_iter_ = 0
        self.t_ = 0
        if params.solver == "lbfgs":   # scikit-learn's lbfgs sets none of the epoch records
            for name in _STOCHASTIC_RECORDS:
                self.__dict__.pop(name, None)
        else:
            self.loss_curve_ = []
            self._reset_stopping_records(params)

    def _reset_stopping_records(self, params, only_if_switched=False):
        """Start the records of the stopping rule (best loss or validation scores).

        A warm start keeps them, as scikit-learn does, unless early_stopping
        was switched since they were started (or an lbfgs fit left none).
        """
        if not hasattr(self, "loss_curve_"):
            self.loss_curve_ = []
        elif only_if_switched and params.early_stopping == (
                self.validation_scores_ is not None):
            return
        self._no_improvement_count = 0
        if params.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf
        self._best_params = self.net_.params.copy()

    def _check_same_network(self, layer_sizes, params, loss, out_activation, what):
        net = self.net_
        if tuple(layer_sizes) != net.layer_sizes:
            raise ValueError(
                f"{what} continues the fitted network of layer sizes {list(net.layer_sizes)}, "
                f"but hidden_layer_sizes and the data now give {layer_sizes}; refit with "
                "warm_start=False or restore hidden_layer_sizes")
        if net.activations != (params.activation,) * (len(layer_sizes) - 2) + (out_activation,):
            raise ValueError(f"{what} continues the fitted network, whose activations are "
                             f"{list(net.activations)}; activation={self.activation!r} differs")
        if net.loss_name != loss:
            raise ValueError(f"{what} continues the fitted network trained with loss "
                             f"{net.loss_name!r}; loss={self.loss!r} gives {loss!r}")
        if params.dtype is not None and params.dtype != net.dtype:
            raise ValueError(f"{what} continues the fitted network of dtype "
                             f"{np.dtype(net.dtype).name}; dtype={self.dtype!r} differs")
        if params.backend not in (None, "auto") and params.backend != net.backend:
            raise ValueError(f"{what} continues the fitted network on backend {net.backend!r}; "
                             f"backend={self.backend!r} differs")

    @staticmethod
    def _initial_parameters(layer_sizes, params, random_state):
        """Initial (coef, intercept) per layer, drawn as scikit-learn draws them."""
        # Glorot's uniform bound; scikit-learn uses factor 2 for the logistic
        # activation and 6 otherwise, and draws the intercepts from it too.
        factor = 2.0 if params.activation == "sigmoid" else 6.0
        initial = []
        for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = random_state.uniform(-bound, bound, fan_out)
            initial.append((coef, intercept))
        return initial

    def _split(self, data, targets, params, random_state):
        """scikit-learn's early-stopping split of ``data`` (rows, targets, weights), in place."""
        rows = np.arange(data.X.shape[0])
        try:
            train, val = train_test_split(rows, random_state=random_state,
                                          test_size=params.validation_fraction,
                                          stratify=targets.stratify)
        except ValueError as error:
            raise ValueError(f"early_stopping could not split off validation_fraction="
                             f"{self.validation_fraction} of {data.X.shape[0]} samples: {error}"
                             ) from error
        if val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        weight = data.weight
        if weight is not None:
            data.weight_val = weight[val]
            if not weight[train].sum(dtype=np.float64) > 0 or not data.weight_val.sum(
                    dtype=np.float64) > 0:
                raise ValueError("sample_weight: the early-stopping split left the training "
                                 "or the validation rows with weights that are all 0")
        data.X_val, data.Y_val, data.y_val = take_rows(data.X, val), data.Y[val], targets.y[val]
        # The training rows are read in place, in the split's order (X may be a memmap).
        data.rows = train

    def _optimizer(self, params, batch_size, mean_weight=1.0):
        """The ``cymlp.optim`` optimizer that takes scikit-learn's steps.

        cymlp's gradient is ``scale`` times scikit-learn's (its losses are
        means where scikit-learn's are halved or summed), so the L2 term
        ``alpha * W / batch_size`` becomes ``weight_decay = scale * alpha /
        batch_size``; SGD's learning rate is divided by ``scale`` and Adam's
        ``eps`` multiplied by it, which makes both updates equal to those on
        scikit-learn's gradient (Adam is otherwise invariant to the scale).
        """
        scale = self._gradient_scale
        # scikit-learn divides alpha by the batch's weight; cymlp's weight
        # decay is one number, so the mean batch weight stands in for it.
        weight_decay = scale * params.alpha / (batch_size * mean_weight)
        if params.solver == "sgd":
            return SGD(params.learning_rate_init / scale, params.momentum,
                       params.nesterovs_momentum and params.momentum > 0, weight_decay)
        return Adam(params.learning_rate_init, (params.beta_1, params.beta_2),
                    params.epsilon * scale, weight_decay)

    @property
    def _gradient_scale(self):
        """cymlp's loss gradient divided by scikit-learn's, for this network."""
        n_outputs = self.net_.layer_sizes[-1]
        return {"mse": 2.0 / n_outputs, "bce": 1.0 / n_outputs, "poisson": 1.0 / n_outputs,
                "cross_entropy": 1.0}[self.net_.loss_name]

    @property
    def _loss_scale(self):
        """scikit-learn's loss value divided by cymlp's (half MSE, summed BCE and Poisson).

        (scikit-learn's Poisson deviance also holds a term of the targets
        alone, ``_loss_offset``.)
        """
        n_outputs = self.net_.layer_sizes[-1]
        return {"mse": 0.5, "bce": float(n_outputs), "poisson": float(n_outputs),
                "cross_entropy": 1.0}[self.net_.loss_name]

    def _loss_offset(self, Y, weight):
        """The part of scikit-learn's loss that depends on the targets only (Poisson's)."""
        if self.net_.loss_name != "poisson":
            return 0.0
        per_row = (xlogy(Y, Y) - Y).sum(axis=1, dtype=np.float64)
        return float(np.average(per_row, weights=weight))

    @staticmethod
    def _l2_term(params, flat_weights, n_batches, total_weight):
        """scikit-learn's ``0.5 * alpha * ||W||**2 / batch weight``, summed over an epoch's batches.

        ``flat_weights``: each layer's weights as a flat view. (Exact for
        batches of equal weight; the weights at the end of the epoch stand
        in for those of each batch.)
        """
        if not params.alpha:
            return 0.0
        # einsum, not np.dot: BLAS's dot may sum in another order on another
        # thread count (and would wake NumPy's BLAS threads besides).
        squares = sum(float(np.einsum("i,i->", w, w)) for w in flat_weights)
        return 0.5 * params.alpha * squares * n_batches / total_weight

    def _run_epochs(self, data, params, incremental):
        """scikit-learn's stochastic-solver loop, on one training session of the network.

        The session's trainer carries the optimizer state from epoch to
        epoch; ``partial_fit`` runs one epoch per call, continuing it (and
        the SGD learning rate of ``learning_rate="invscaling"/"adaptive"``).
        """
        net = self.net_
        rows = data.rows
        n_train = data.X.shape[0] if rows is None else rows.shape[0]
        train_weight = data.weight if rows is None or data.weight is None else data.weight[rows]
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped", stacklevel=4)
            batch_size = min(self.batch_size, n_train)
        total_weight = n_train if train_weight is None else float(
            train_weight.sum(dtype=np.float64))
        optimizer = self._optimizer(params, batch_size, total_weight / n_train)
        n_batches = -(-n_train // batch_size)
        loss_scale, scale = self._loss_scale, self._gradient_scale
        offset = self._loss_offset(data.Y if rows is None else data.Y[rows], train_weight)
        if params.early_stopping:
            val_offset = self._loss_offset(data.Y_val, data.weight_val)
        sgd = params.solver == "sgd"
        flat_weights = [weights.reshape(-1) for weights in net.weights]
        self.n_iter_ = 0
        try:
            with _training.open_session(net, data.X, data.Y, batch_size, optimizer,
                                        check_outputs=True, sample_weight=data.weight,
                                        rows=rows) as session:
                for _ in range(params.max_iter):
                    if sgd:
                        session.learning_rate = self._sgd_learning_rate / scale
                    try:
                        loss, _accuracy = session.run_epoch(self.n_iter_ + 1, params.shuffle)
                    except TrainingDiverged as error:
                        raise ValueError(
                            "Solver produced non-finite parameter weights. The input data may "
                            "contain large values and need to be preprocessed, or "
                            f"learning_rate_init={self.learning_rate_init} is too large. "
                            f"({error})") from error
                    self.n_iter_ += 1
                    self.t_ += n_train
                    penalty = self._l2_term(params, flat_weights, n_batches, total_weight)
                    self.loss_ = loss * loss_scale + offset + penalty
                    self.loss_curve_.append(self.loss_)
                    if self.verbose:
                        print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                    if params.early_stopping:
                        val_loss, _ = session.evaluate(data.X_val, data.Y_val, data.weight_val)
                        self.validation_loss_curve_.append(
                            val_loss * loss_scale + val_offset + penalty)
                    self._update_no_improvement_count(params, data)
                    if sgd and params.learning_rate == "invscaling":
                        self._set_sgd_learning_rate(
                            params.learning_rate_init / (self.t_ + 1) ** params.power_t)
                    if self._no_improvement_count > params.n_iter_no_change:
                        if self._stop_or_lower_rate(params):
                            break
                        self._no_improvement_count = 0
                    if incremental:
                        break
                    if self.n_iter_ == params.max_iter:
                        warnings.warn(
                            f"Stochastic Optimizer: Maximum iterations ({params.max_iter}) "
                            "reached and the optimization hasn't converged yet.",
                            ConvergenceWarning, stacklevel=4)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if params.early_stopping and params.restore_best_weights:
            net.params[...] = self._best_params

    def _set_sgd_learning_rate(self, rate):
        """The next epochs' SGD rate; the momentum buffer rescaled to keep scikit-learn's velocity.

        scikit-learn's velocity is ``momentum * v - rate * g``; torch's
        buffer (cymlp's) is ``momentum * b + g``, applied times the current
        rate. The two agree while the rate is constant; when it changes from
        ``r0`` to ``r1``, ``b * r0 / r1`` is the buffer of the same velocity.
        """
        if rate != self._sgd_learning_rate and self.momentum > 0 and self.net_._step > 0:
            self.net_._optimizer_state[0] *= self._sgd_learning_rate / rate
        self._sgd_learning_rate = rate

    def _stop_or_lower_rate(self, params):
        """scikit-learn's answer to ``n_iter_no_change`` epochs without progress: True to stop."""
        what = "Validation score" if params.early_stopping else "Training loss"
        message = (f"{what} did not improve more than tol={params.tol:f} for "
                   f"{params.n_iter_no_change} consecutive epochs.")
        if params.solver != "sgd" or params.learning_rate != "adaptive":
            if self.verbose:
                print(message + " Stopping.")
            return True
        if self._sgd_learning_rate <= 1e-6:
            if self.verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self._set_sgd_learning_rate(self._sgd_learning_rate / 5.0)
        if self.verbose:
            print(message + f" Setting learning rate to {self._sgd_learning_rate:f}")
        return False

    def _run_lbfgs(self, data, params):
        """scikit-learn's lbfgs solver: L-BFGS-B on its objective, one kernel call per evaluation.

        The objective is scikit-learn's: the (weighted) mean loss on its
        scale plus ``0.5 * alpha * ||W||**2 / sum(sample_weight)`` on the
        weights (not the intercepts).
        """
        net = self.net_
        total_weight = data.X.shape[0] if data.weight is None else float(
            data.weight.sum(dtype=np.float64))
        mask = np.zeros(net.n_params)
        for weights in layer_views(mask, net._layout)[0]:
            weights[...] = 1.0
        objective = _training.LossAndGrad(net, data.X, data.Y, data.weight, self._loss_scale,
                                          params.alpha / total_weight, mask)
        iteration = [0]

        def report(x):
            iteration[0] += 1
            if self.verbose:
                print(f"Iteration {iteration[0]}, loss = {objective(x)[0]:.8f}")

        with net._exclusive("fit"):
            result = _training.run_lbfgs(net, objective, params.max_iter, params.max_fun,
                                         params.tol, callback=report)
        if not np.isfinite(net.params).all() or not np.isfinite(result.fun):
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
        self.n_iter_ = min(int(result.nit), params.max_iter)
        self.loss_ = float(result.fun) + self._loss_offset(data.Y, data.weight)
        if result.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status="
                f"{result.status}): {result.message}. Increase the number of iterations "
                "(max_iter), the number of evaluations (max_fun), or scale the data as shown "
                "in https://scikit-learn.org/stable/modules/preprocessing.html",
                ConvergenceWarning, stacklevel=4)

    def _update_no_improvement_count(self, params, data):
        """scikit-learn's rule: validation score with early stopping, else training loss."""
        if params.early_stopping:
            score = self._score_unchecked(data.X_val, data.y_val, data.weight_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + params.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.net_.params.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - params.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _score_unchecked(self, X, y, sample_weight=None):
        """Accuracy or R^2 on already validated data (NaN for non-finite outputs)."""
        outputs = self.net_.predict(X)
        if not np.isfinite(outputs).all():
            return np.nan
        return float(self._score_function(y, self._outputs_to_predictions(outputs),
                                          sample_weight=sample_weight))

    # ------------------------------------------------------------ inference

    def _outputs(self, X):
        """Network outputs for validated X, in the network's dtype."""
        check_is_fitted(self)
        X = _validate_data(self, X, dtype=(np.float64, np.float32), accept_sparse=True,
                           reset=False)
        return self.net_.predict(_features(X, self.net_.dtype))

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True   # read in place by the kernels, never densified
        return tags

    @property
    def coefs_(self) -> _LayerArrays:
        """Sequence of ndarray: ``coefs_[i]`` of shape (n_units[i], n_units[i + 1]).

        Views of the network's weights (``net_.weights``): writing into them,
        assigning an item (``coefs_[i] = W``) or the whole list
        (``coefs_ = [W0, W1, ...]``) changes the model. Assigned arrays must
        have the shapes above and are converted to the network's dtype.
        """
        return _LayerArrays(self.net_.weights, "coefs_")

    @coefs_.setter
    def coefs_(self, coefs):
        check_is_fitted(self)
        self.coefs_.assign(coefs)

    @property
    def intercepts_(self) -> _LayerArrays:
        """Sequence of ndarray: ``intercepts_[i]`` of shape (n_units[i + 1],).

        Views of the network's biases (``net_.biases``), assignable as ``coefs_``.
        """
        return _LayerArrays(self.net_.biases, "intercepts_")

    @intercepts_.setter
    def intercepts_(self, intercepts):
        check_is_fitted(self)
        self.intercepts_.assign(intercepts)


_COMMON_PARAMETERS = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units of each hidden layer; ``()`` for none.
    activation : {"relu", "identity", "logistic", "tanh", "sigmoid", "leaky_relu"}, \
default="relu"
        Hidden-layer activation; "logistic" and "sigmoid" are the same function,
        "leaky_relu" has slope 0.01.
    solver : {"adam", "sgd"}, default="adam"
        ``"adam"``: Adam as ``torch.optim.Adam``; ``"sgd"``: SGD with
        ``momentum``/``nesterovs_momentum`` (scikit-learn's update).
        ``"lbfgs"``: SciPy's L-BFGS-B on scikit-learn's objective, one kernel
        call per evaluation (``max_iter`` iterations, ``max_fun``
        evaluations at most).
    alpha : float, default=0.0001
        L2 penalty. The gradient gets ``alpha * W / batch_size`` as in
        scikit-learn (cymlp's ``weight_decay``), applied to the biases too.
    batch_size : int or "auto", default="auto"
        Rows per update; "auto" is ``min(200, n_samples)``. Larger values are
        clipped to the number of samples, with a warning.
    learning_rate_init : float, default=0.001
        Step size (the first epoch's, for ``learning_rate`` "invscaling" and
        "adaptive").
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        SGD's schedule, scikit-learn's rules: "invscaling" sets
        ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch,
        "adaptive" divides the rate by 5 after ``n_iter_no_change`` epochs
        without an improvement of ``tol`` (stopping below 1e-6).
    power_t : float, default=0.5
        Exponent of "invscaling".
    max_fun : int, default=15000
        lbfgs: evaluations of the loss and gradient at most.
    restore_best_weights : bool, default=True
        With ``early_stopping``: keep the best epoch's weights (scikit-learn's
        behaviour); False keeps the last epoch's.
    max_iter : int, default=200
        Epochs at most (per ``fit`` call; lbfgs: iterations).
    shuffle : bool, default=True
        Shuffle the rows every epoch.
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights (the same draws as scikit-learn's for the
        same value), the early-stopping split and the seed of cymlp's
        shuffling. An integer gives reproducible results on every backend.
    tol : float, default=1e-4
        Improvement of the loss (or validation score) that counts.
    verbose : bool or int, default=False
        Print the loss after each epoch.
    warm_start : bool, default=False
        ``fit`` continues from the fitted weights (with a fresh optimizer, as
        scikit-learn) instead of re-initialising.
    momentum : float, default=0.9
        SGD momentum, in [0, 1).
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD (when ``momentum > 0``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop when its
        score (accuracy or R^2) has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the weights of the best epoch
        (scikit-learn's rule).
    validation_fraction : float, default=0.1
        Share of the data held out with ``early_stopping``, in (0, 1).
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decay rates, in [0, 1).
    epsilon : float, default=1e-8
        Adam's denominator term.
    n_iter_no_change : int or numpy.inf, default=10
        Epochs without improvement by ``tol`` before stopping.
""".rstrip("\n")

_COMMON_ATTRIBUTES = """
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of X, when X had string column names (e.g. a DataFrame).
    loss_ : float
        Training loss of the last epoch, on scikit-learn's scale, with the L2
        term.
    loss_curve_ : list of float
        ``loss_`` of every epoch since the network was initialised.
    best_loss_ : float or None
        Lowest ``loss_`` (None with ``early_stopping``).
    validation_scores_ : list of float or None
        Score on the held-out data after each epoch (``early_stopping`` only).
    best_validation_score_ : float or None
        Best of ``validation_scores_`` (``early_stopping`` only).
    n_iter_ : int
        Epochs run by the last ``fit`` or ``partial_fit`` call.
    t_ : int
        Training samples seen since the network was initialised.
    coefs_ : sequence of ndarray
        Weight matrices, ``coefs_[i]`` of shape (n_units[i], n_units[i + 1]);
        views of ``net_.weights``. As with scikit-learn's lists, assigning an
        item (``coefs_[i] = W``) or the whole list changes the model (shapes
        checked, values converted to the network's dtype).
    intercepts_ : sequence of ndarray
        Bias vectors, ``intercepts_[i]`` of shape (n_units[i + 1],); views of
        ``net_.biases``, assignable as ``coefs_``.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        Output activation: "logistic", "softmax" or "identity".
    net_ : cymlp.MLP
        The trained network.
"""

_COMMON_NOTES = """
    The training loop is scikit-learn's ``sgd``/``adam`` loop, run epoch by
    epoch on one training session of the network (one backend trainer per
    ``fit``, whose optimizer state ``partial_fit`` continues). Differences
    from scikit-learn's MLP:

    - ``alpha`` decays the intercepts as well as the weights (cymlp's
      ``weight_decay`` covers every parameter), and the last, smaller batch of
      an epoch is decayed with the full ``batch_size``.
    - Adam adds ``epsilon`` after the bias correction (``torch.optim.Adam``);
      scikit-learn adds it before, a difference of order ``epsilon`` (none
      when ``beta_2=0``).
    - Shuffling draws from cymlp's generator, so with ``shuffle=True`` the
      batches differ from scikit-learn's (the initial weights and the
      early-stopping split are the same for the same ``random_state``).
    - ``loss_curve_`` measures the L2 term with the weights at the end of each
      epoch.
    - After a warm start with ``early_stopping=True`` the best epoch's weights
      are restored; scikit-learn may keep the last epoch's.
    - With ``sample_weight``, ``alpha`` is divided by the mean batch
      weight (scikit-learn: by each batch's), and ``loss_curve_`` is the
      epoch's weighted mean loss.
    - Training that diverges raises a ``ValueError`` at once.
"""



def _features(X, dtype):
    """Validated X as the network reads it: dense C-contiguous, or CSR rows (any sparse format)."""
    if issparse(X):
        return as_csr_rows(X, "X", dtype, what="features")
    return as_matrix(X, "X", dtype, what="features")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron classifier trained by cymlp.

    A drop-in for ``sklearn.neural_network.MLPClassifier`` (solvers "adam"
    and "sgd") whose training and prediction run in cymlp's compiled kernels
    or its NumPy backend.

    Parameters
    ----------{_COMMON_PARAMETERS}
    loss : {{None, "cross_entropy", "bce", "mse"}}, default=None
        None: "bce" on one sigmoid output for two classes (scikit-learn's
        logistic output) and on one sigmoid output per label for multilabel
        targets, "cross_entropy" on softmax outputs for three or more classes.
        "cross_entropy" with two classes uses two softmax outputs; "bce" needs
        two classes or multilabel targets; "mse" uses sigmoid outputs (binary,
        multilabel) or softmax outputs (multiclass).
    backend : {{None, "auto", "cython", "numpy"}}, default=None
        cymlp backend; None reads ``CYMLP_BACKEND`` (default "auto").
    dtype : {{None, numpy.float32, numpy.float64}}, default=None
        Floating type of the network; None: float32 if X is float32, else
        float64 (as scikit-learn), fixed at the first fit.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (any type scikit-learn accepts, strings included).{_COMMON_ATTRIBUTES}
    See Also
    --------
    MLPRegressor : The same network for regression.
    cymlp.MLP : The network itself.

    Notes
    -----{_COMMON_NOTES}
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from cymlp.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(),
    ...                       MLPClassifier(max_iter=500, random_state=0)).fit(X, y)
    >>> model.score(X, y) > 0.95
    True
    """

    _estimator_kind = "classifier"
    _losses = ("cross_entropy", "bce", "mse")
    _score_function = staticmethod(_accuracy)

    def __init__(self, *args, class_weight=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weight = class_weight

    # scikit-learn reads the parameters from the signature: the shared ones
    # (written once, in _BaseMLP.__init__) and class_weight.
    __init__.__signature__ = inspect.signature(_BaseMLP.__init__).replace(parameters=[
        *inspect.signature(_BaseMLP.__init__).parameters.values(),
        inspect.Parameter("class_weight", inspect.Parameter.KEYWORD_ONLY, default=None)])

    def _check_class_weight(self):
        """None, "balanced" or a dict {class: weight > 0}, as scikit-learn's classifiers take."""
        class_weight = self.class_weight
        if class_weight is None or (isinstance(class_weight, str)
                                    and class_weight == "balanced"):
            return class_weight
        if not isinstance(class_weight, dict):
            _fail("class_weight", "None, 'balanced' or a dict {class: weight}", class_weight)
        for label, weight in class_weight.items():
            if (isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real)
                    or not math.isfinite(weight) or weight < 0):
                _fail(f"class_weight[{label!r}]", "a finite number >= 0", weight)
        return class_weight

    def fit(self, X, y, sample_weight=None) -> "MLPClassifier":
        """Train the network on X and the labels y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a binary indicator matrix for multilabel targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (times ``class_weight``): the loss of each
            batch is their weighted mean, as in scikit-learn.

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(lambda self: self._is_stochastic())
    def partial_fit(self, X, y, sample_weight=None, classes=None) -> "MLPClassifier":
        """One epoch over X and y, continuing the optimizer (online learning).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels (or indicator matrix).
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.
        classes : array-like of shape (n_classes,), default=None
            Every class the calls will see; required on the first call, and
            y need not contain all of them.

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def _encode_targets(self, y, params, first_pass, incremental, classes):
        """Targets as network outputs; sets ``classes_`` on the first pass."""
        # One type_of_target answers every question below (a (n, 1) column has
        # the type of its ravel); check_classification_targets gives
        # scikit-learn's own error for the types it refuses.
        target_type = type_of_target(y, input_name="y")
        if target_type not in _CLASSIFICATION_TARGETS:
            check_classification_targets(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        multilabel = target_type.startswith("multilabel")
        # A first fit's labels are the classes its binarizer finds below (it
        # calls unique_labels(y), and raises what it would, for these types).
        from_binarizer = (first_pass and not incremental
                          and target_type in ("binary", "multiclass"))
        labels = None if multilabel or from_binarizer else unique_labels(y)
        if incremental:
            if classes is None and (first_pass or not hasattr(self, "classes_")):
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(all the classes the calls will see)")
            if classes is not None and not first_pass and not multilabel and not np.array_equal(
                    unique_labels(classes), self.classes_):
                raise ValueError(f"classes={classes!r} is not the same as on the first call "
                                 f"to partial_fit, {self.classes_!r}")
        if first_pass:
            binarizer = LabelBinarizer()
            binarizer.fit(y if multilabel or not incremental else classes)
            if from_binarizer:
                labels = binarizer.classes_
            if not multilabel and labels is not None and incremental:
                unseen = np.setdiff1d(labels, binarizer.classes_)
                if unseen.size:
                    raise ValueError(f"y has classes {unseen!r} that are not in "
                                     f"classes={classes!r}")
        else:
            binarizer = self._label_binarizer
            if multilabel != binarizer.y_type_.startswith("multilabel"):
                raise ValueError("y must be of the same kind (multilabel or not) as when the "
                                 "network was first fitted")
            if multilabel:
                if y.shape[1] != len(self.classes_):
                    raise ValueError(f"y has {y.shape[1]} labels; the network was fitted with "
                                     f"{len(self.classes_)}")
            elif self.warm_start and not incremental:
                if set(labels) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{labels}")
            elif np.setdiff1d(labels, self.classes_).size:
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {labels}.")
        kind = binarizer.y_type_
        loss = self._resolve_loss(kind, params.loss)
        if first_pass:  # only once everything is known to fit
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
        Y = binarizer.transform(y) if multilabel else _binarize(y, binarizer.classes_)
        stratify = Y if kind == "binary" else None
        if kind == "binary" and loss == "cross_entropy":
            Y = np.hstack([1 - Y, Y])
        return SimpleNamespace(Y=Y, y=y, kind=kind, loss=loss, stratify=stratify)

    @staticmethod
    def _resolve_loss(kind, loss):
        """The checked ``loss`` parameter, or its default, for targets of ``kind``."""
        if loss is None:
            return "cross_entropy" if kind == "multiclass" else "bce"
        if loss == "bce" and kind == "multiclass":
            raise ValueError("loss='bce' needs two classes or multilabel targets; use "
                             "loss='cross_entropy' (or None) for three or more classes")
        if loss == "cross_entropy" and kind.startswith("multilabel"):
            raise ValueError("loss='cross_entropy' (softmax) cannot express multilabel "
                             "targets; use loss='bce' (or None)")
        return loss

    @staticmethod
    def _loss_and_output(targets):
        if targets.loss == "cross_entropy" or (targets.loss == "mse"
                                               and targets.kind == "multiclass"):
            return targets.loss, "softmax"
        return targets.loss, "sigmoid"

    def _outputs_to_predictions(self, outputs):
        if len(self.classes_) == 1:   # scikit-learn predicts the one class it saw
            return np.full(outputs.shape[0], self.classes_[0])
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return self._label_binarizer.inverse_transform(outputs)  # each label above 0.5
        # cymlp's classification rule (the argmax; one sigmoid output: above 0.5),
        # which is also what LabelBinarizer.inverse_transform does.
        return self.classes_[classify(outputs)]

    def predict(self, X) -> np.ndarray:
        """Predicted class of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels from ``classes_`` (an indicator matrix for multilabel).
        """
        return self._outputs_to_predictions(self._outputs(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; for multilabel targets the
            probability of each label.
        """
        outputs = self._outputs(X)
        if outputs.shape[1] == 1:
            return np.hstack([1 - outputs, outputs])
        return outputs

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of ``predict_proba``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multilabel": True}


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron regressor trained by cymlp.

    A drop-in for ``sklearn.neural_network.MLPRegressor`` (solvers "adam"
    and "sgd", squared error) whose training and prediction run in cymlp's
    compiled kernels or its NumPy backend.

    Parameters
    ----------{_COMMON_PARAMETERS}
    loss : {{None, "mse", "squared_error"}}, default=None
        Squared error on identity outputs (all three names mean it).
    backend : {{None, "auto", "cython", "numpy"}}, default=None
        cymlp backend; None reads ``CYMLP_BACKEND`` (default "auto").
    dtype : {{None, numpy.float32, numpy.float64}}, default=None
        Floating type of the network; None: float32 if X is float32, else
        float64 (as scikit-learn), fixed at the first fit.

    Attributes
    ----------{_COMMON_ATTRIBUTES}
    See Also
    --------
    MLPClassifier : The same network for classification.
    cymlp.MLP : The network itself.

    Notes
    -----{_COMMON_NOTES}
    Examples
    --------
    >>> import numpy as np
    >>> from cymlp.sklearn import MLPRegressor
    >>> X = np.linspace(-2, 2, 200).reshape(-1, 1)
    >>> model = MLPRegressor((32,), activation="tanh", learning_rate_init=0.01,
    ...                      max_iter=1000, random_state=0).fit(X, X.ravel() ** 2)
    >>> model.score(X, X.ravel() ** 2) > 0.95
    True
    """

    _estimator_kind = "regressor"
    _losses = ("mse", "squared_error", "poisson")
    _score_function = staticmethod(r2_score)

    def fit(self, X, y, sample_weight=None) -> "MLPRegressor":
        """Train the network on X and the targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample: the loss of each batch is their weighted
            mean, as in scikit-learn.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(lambda self: self._is_stochastic())
    def partial_fit(self, X, y, sample_weight=None) -> "MLPRegressor":
        """One epoch over X and y, continuing the optimizer (online learning).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _encode_targets(self, y, params, first_pass, incremental, classes):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if Y.dtype.kind == "b":  # scikit-learn takes boolean targets as 0 and 1
            Y = Y.astype(np.float64)
        loss = "poisson" if params.loss == "poisson" else "mse"
        if loss == "poisson" and (np.asarray(Y) < 0).any():
            raise ValueError("Some value(s) of y are negative which is not allowed for "
                             "Poisson regression (loss='poisson').")
        return SimpleNamespace(Y=Y, y=y, kind="continuous", loss=loss, stratify=None)

    @staticmethod
    def _loss_and_output(targets):
        return ("poisson", "exp") if targets.loss == "poisson" else ("mse", "identity")

    @staticmethod
    def _outputs_to_predictions(outputs):
        return outputs.ravel() if outputs.shape[1] == 1 else outputs

    def predict(self, X) -> np.ndarray:
        """Predicted targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            1-D when the network has one output.
        """
        return self._outputs_to_predictions(self._outputs(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
