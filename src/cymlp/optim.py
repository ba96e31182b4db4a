"""Optimizers: what ``MLP.fit(optimizer=...)`` accepts.

An optimizer object holds hyperparameters only; the state it updates
(momentum buffer, Adam moments, step count) belongs to the network, persists
across ``fit`` and ``partial_fit`` calls, and starts afresh when the kind of
optimizer changes (``MLP.reset_optimizer()`` forgets it on request).

>>> from cymlp.optim import SGD, Adam
>>> SGD(0.05, momentum=0.9, nesterov=True)
SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.0)
>>> Adam(1e-3)
Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)
>>> LBFGS(max_fun=500)
LBFGS(max_fun=500, tol=1e-05, history_size=10, weight_decay=0.0)
"""

from ._codes import OPTIMIZERS, Optimizer
from ._validation import check_bool, check_choice, check_float, check_int

__all__ = ["SGD", "Adam", "LBFGS"]


class _Unset:
    """The default of ``fit``'s optimizer options: not given (None is a bad value)."""

    def __repr__(self):
        return "<unset>"


UNSET = _Unset()


class SGD:
    """Stochastic gradient descent with the semantics of ``torch.optim.SGD``.

    Parameters
    ----------
    lr : float, default=0.1
        Step size, > 0.
    momentum : float, default=0.0
        Momentum factor in [0, 1) (dampening 0).
    nesterov : bool, default=False
        Nesterov momentum; needs ``momentum > 0``.
    weight_decay : float, default=0.0
        L2 penalty added to the gradient, ``grad + weight_decay * params``,
        for weights and biases alike.
    """

    code = Optimizer.SGD
    beta1 = beta2 = eps = 0.0

    def __init__(self, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr = check_float(lr, "lr")
        self.momentum = check_float(momentum, "momentum", maximum=1.0, inclusive_minimum=True)
        self.nesterov = check_bool(nesterov, "nesterov")
        self.weight_decay = check_float(weight_decay, "weight_decay", inclusive_minimum=True)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0 (as in torch.optim.SGD)")

    def __repr__(self):
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay})")


class Adam:
    """Adam with the semantics of ``torch.optim.Adam`` (weight decay as L2 on the gradient).

    Parameters
    ----------
    lr : float, default=1e-3
        Step size, > 0.
    betas : tuple of two floats, default=(0.9, 0.999)
        Decay rates of the first and second moment, each in [0, 1).
    eps : float, default=1e-8
        Term added to the denominator, > 0.
    weight_decay : float, default=0.0
        L2 penalty added to the gradient.
    """

    code = Optimizer.ADAM
    momentum = 0.0
    nesterov = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = check_float(lr, "lr")
        if isinstance(betas, str) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"betas must be a pair of floats (beta1, beta2); got {betas!r}")
        self.beta1 = check_float(betas[0], "betas[0]", maximum=1.0, inclusive_minimum=True)
        self.beta2 = check_float(betas[1], "betas[1]", maximum=1.0, inclusive_minimum=True)
        self.eps = check_float(eps, "eps")
        self.weight_decay = check_float(weight_decay, "weight_decay", inclusive_minimum=True)

    @property
    def betas(self):
        """``(beta1, beta2)``."""
        return (self.beta1, self.beta2)

    def __repr__(self):
        return (f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay})")


class LBFGS:
    """Full-batch L-BFGS: ``scipy.optimize.minimize(method="L-BFGS-B")`` on ``params``.

    Each evaluation of the objective is one call of the backend's
    ``loss_and_grad`` over all the training rows (no Python per sample or
    per layer). With ``MLP.fit(optimizer=LBFGS(...))``, ``epochs`` is the
    largest number of L-BFGS iterations and ``History`` gets one entry per
    iteration. The objective is the (weighted) mean loss plus
    ``0.5 * weight_decay * ||params||**2``, whose gradient is the
    ``grad + weight_decay * params`` of the other optimizers. L-BFGS keeps
    no state between fits: the momentum buffer or Adam moments of an earlier
    fit are forgotten.

    Parameters
    ----------
    max_fun : int, default=15000
        Largest number of loss-and-gradient evaluations (``maxfun``).
    tol : float, default=1e-5
        Stop when the largest component of the projected gradient is below
        it (``gtol``).
    history_size : int, default=10
        Correction pairs kept (``maxcor``; ``history_size`` of
        ``torch.optim.LBFGS``).
    weight_decay : float, default=0.0
        L2 penalty on weights and biases alike.
    """

    code = "lbfgs"   # not a kernel code: L-BFGS runs in Python around loss_and_grad

    def __init__(self, max_fun=15000, tol=1e-5, history_size=10, weight_decay=0.0):
        self.max_fun = check_int(max_fun, "max_fun", minimum=1)
        self.tol = check_float(tol, "tol", inclusive_minimum=True)
        self.history_size = check_int(history_size, "history_size", minimum=1)
        self.weight_decay = check_float(weight_decay, "weight_decay", inclusive_minimum=True)

    def __repr__(self):
        return (f"LBFGS(max_fun={self.max_fun}, tol={self.tol}, "
                f"history_size={self.history_size}, weight_decay={self.weight_decay})")


def make_optimizer(optimizer, learning_rate=UNSET, momentum=UNSET, nesterov=UNSET,
                   weight_decay=UNSET, betas=UNSET, eps=UNSET):
    """An optimizer object from ``fit``'s arguments.

    ``optimizer`` is an ``SGD``/``Adam``/``LBFGS`` object (then the other
    arguments must be left unset) or a name, "sgd", "adam" or "lbfgs", with
    the options given separately (``learning_rate`` 0.1 unless given, as
    ``fit`` documents; L-BFGS takes only ``weight_decay``).
    Errors name ``fit``'s arguments.
    """
    options = {"learning_rate": learning_rate, "momentum": momentum, "nesterov": nesterov,
               "weight_decay": weight_decay, "betas": betas, "eps": eps}
    given = [name for name, value in options.items() if value is not UNSET]
    if isinstance(optimizer, (SGD, Adam, LBFGS)):
        if given:
            raise ValueError(f"{given[0]} cannot be combined with an optimizer object; "
                             f"set it on the object instead, e.g. {type(optimizer).__name__}"
                             f"(lr=...)")
        # A fresh, checked copy: the attributes of the object may have been changed.
        if isinstance(optimizer, LBFGS):
            return LBFGS(optimizer.max_fun, optimizer.tol, optimizer.history_size,
                         optimizer.weight_decay)
        if isinstance(optimizer, SGD):
            return SGD(optimizer.lr, optimizer.momentum, optimizer.nesterov,
                       optimizer.weight_decay)
        return Adam(optimizer.lr, (optimizer.beta1, optimizer.beta2), optimizer.eps,
                    optimizer.weight_decay)
    if not isinstance(optimizer, str):
        raise TypeError("optimizer must be 'sgd', 'adam', 'lbfgs' or a cymlp.optim.SGD/Adam/"
                        "LBFGS object; "
                        f"got {optimizer!r}")
    name = check_choice(optimizer, "optimizer", tuple(OPTIMIZERS) + ("lbfgs",))
    def value(given, default):
        return default if given is UNSET else given

    lr, decay = value(learning_rate, 0.1), value(weight_decay, 0.0)
    try:
        if name == "lbfgs":
            others = [option for option in given if option != "weight_decay"]
            if others:
                raise ValueError(f"{others[0]} is not an L-BFGS option; L-BFGS takes "
                                 "weight_decay (or pass cymlp.optim.LBFGS(...))")
            return LBFGS(weight_decay=decay)
        if name == "sgd":
            if betas is not UNSET or eps is not UNSET:
                raise ValueError("betas and eps are Adam options; SGD uses momentum")
            return SGD(lr, value(momentum, 0.0), value(nesterov, False), decay)
        if value(momentum, 0.0) or value(nesterov, False):
            raise ValueError("momentum and nesterov are SGD options; Adam uses betas")
        return Adam(lr, value(betas, (0.9, 0.999)), value(eps, 1e-8), decay)
    except (TypeError, ValueError) as error:
        message = str(error)
        if message.startswith("lr "):   # fit's name for it
            message = "learning_rate " + message[3:]
        raise type(error)(message) from None
