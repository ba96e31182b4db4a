"""Learning-rate schedules, applied once per epoch.

A schedule maps the base ``learning_rate`` given to ``MLP.fit`` and the
epoch index (0 for the first epoch of that ``fit`` call) to the rate used in
that epoch; ``History.learning_rate`` records it. Two keyword arguments
carry what the schedules of scikit-learn's estimators need:
``samples_seen``, the rows trained on in this fit before the epoch
(``InvScalingLR``), and ``losses``, the training losses of the epochs of
this fit so far (``AdaptiveLR``). The others ignore them.

>>> StepLR(step_size=10, gamma=0.5)(0.1, 25)
0.025
>>> InvScalingLR(power_t=0.5)(0.1, 1, samples_seen=99)
0.01
"""

import math

from ._validation import check_float, check_int

__all__ = ["ConstantLR", "StepLR", "ExponentialLR", "InvScalingLR", "AdaptiveLR"]


class ConstantLR:
    """The same rate every epoch (the default)."""

    def __call__(self, learning_rate, epoch, *, samples_seen=0, losses=()):
        return learning_rate

    def __repr__(self):
        return "ConstantLR()"


class StepLR:
    """Multiply the rate by ``gamma`` every ``step_size`` epochs.

    ``learning_rate * gamma ** (epoch // step_size)``, as
    ``torch.optim.lr_scheduler.StepLR``.

    Parameters
    ----------
    step_size : int
        Epochs between two decays, >= 1.
    gamma : float, default=0.1
        Decay factor, in (0, 1].
    """

    def __init__(self, step_size, gamma=0.1):
        self.step_size = check_int(step_size, "step_size", minimum=1)
        self.gamma = check_float(gamma, "gamma", maximum=1.0, inclusive_maximum=True)

    def __call__(self, learning_rate, epoch, *, samples_seen=0, losses=()):
        return learning_rate * self.gamma ** (epoch // self.step_size)

    def __repr__(self):
        return f"StepLR(step_size={self.step_size}, gamma={self.gamma})"


class ExponentialLR:
    """Multiply the rate by ``gamma`` every epoch.

    ``learning_rate * gamma ** epoch``, as ``torch.optim.lr_scheduler.ExponentialLR``.

    Parameters
    ----------
    gamma : float
        Decay factor, in (0, 1].
    """

    def __init__(self, gamma):
        self.gamma = check_float(gamma, "gamma", maximum=1.0, inclusive_maximum=True)

    def __call__(self, learning_rate, epoch, *, samples_seen=0, losses=()):
        return learning_rate * self.gamma ** epoch

    def __repr__(self):
        return f"ExponentialLR(gamma={self.gamma})"


class InvScalingLR:
    """Divide the rate by ``(samples_seen + 1) ** power_t``.

    ``learning_rate / (t + 1) ** power_t`` with ``t`` the rows trained on
    before the epoch, so the first epoch runs at ``learning_rate``: the
    ``learning_rate="invscaling"`` of scikit-learn's SGD solver, which
    updates the rate at the end of each epoch.

    Parameters
    ----------
    power_t : float, default=0.5
        Exponent, >= 0.
    """

    def __init__(self, power_t=0.5):
        self.power_t = check_float(power_t, "power_t", inclusive_minimum=True)

    def __call__(self, learning_rate, epoch, *, samples_seen=0, losses=()):
        return learning_rate / (samples_seen + 1) ** self.power_t

    def __repr__(self):
        return f"InvScalingLR(power_t={self.power_t})"


class AdaptiveLR:
    """Multiply the rate by ``factor`` when the training loss stops improving.

    After more than ``patience`` epochs in a row whose loss did not fall by
    ``min_delta`` below the best so far, the rate is multiplied by
    ``factor`` and the count starts again; it is not lowered below
    ``min_lr``. The defaults are ``learning_rate="adaptive"`` of
    scikit-learn's SGD solver (divide by 5 after ``n_iter_no_change``
    epochs without an improvement of ``tol``). The rate is worked out from
    this fit's losses each epoch, so the schedule holds no state.

    Parameters
    ----------
    factor : float, default=0.2
        In (0, 1].
    patience : int, default=10
        Epochs without improvement tolerated, >= 1.
    min_delta : float, default=1e-4
        Decrease of the loss that counts as an improvement, >= 0.
    min_lr : float, default=1e-6
        The rate is lowered only while it is above this.
    """

    def __init__(self, factor=0.2, patience=10, min_delta=1e-4, min_lr=1e-6):
        self.factor = check_float(factor, "factor", maximum=1.0, inclusive_maximum=True)
        self.patience = check_int(patience, "patience", minimum=1)
        self.min_delta = check_float(min_delta, "min_delta", inclusive_minimum=True)
        self.min_lr = check_float(min_lr, "min_lr", inclusive_minimum=True)

    def __call__(self, learning_rate, epoch, *, samples_seen=0, losses=()):
        rate, best, count = learning_rate, math.inf, 0
        for loss in losses:
            count = count + 1 if loss > best - self.min_delta else 0
            best = min(best, loss)
            if count > self.patience and rate > self.min_lr:
                rate, count = rate * self.factor, 0
        return rate

    def __repr__(self):
        return (f"AdaptiveLR(factor={self.factor}, patience={self.patience}, "
                f"min_delta={self.min_delta}, min_lr={self.min_lr})")


def check_schedule(schedule):
    """A schedule object from None, "constant" or a schedule instance."""
    if schedule is None or (isinstance(schedule, str) and schedule.lower() == "constant"):
        return ConstantLR()
    if isinstance(schedule, (ConstantLR, StepLR, ExponentialLR, InvScalingLR, AdaptiveLR)):
        return schedule
    raise TypeError("lr_schedule must be None, 'constant', or a cymlp.schedules object "
                    "(ConstantLR, StepLR, ExponentialLR, InvScalingLR, AdaptiveLR); "
                    f"got {schedule!r}")


