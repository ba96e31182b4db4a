"""Learning-rate schedules, applied once per epoch.

A schedule maps the base ``learning_rate`` given to ``MLP.fit`` and the
epoch index (0 for the first epoch of that ``fit`` call) to the rate used in
that epoch; ``History.learning_rate`` records it.

>>> StepLR(step_size=10, gamma=0.5)(0.1, 25)
0.025
"""

from ._validation import check_float, check_int

__all__ = ["ConstantLR", "StepLR", "ExponentialLR"]


class ConstantLR:
    """The same rate every epoch (the default)."""

    def __call__(self, learning_rate, epoch):
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

    def __call__(self, learning_rate, epoch):
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

    def __call__(self, learning_rate, epoch):
        return learning_rate * self.gamma ** epoch

    def __repr__(self):
        return f"ExponentialLR(gamma={self.gamma})"


def check_schedule(schedule):
    """A schedule object from None, "constant" or a schedule instance."""
    if schedule is None or (isinstance(schedule, str) and schedule.lower() == "constant"):
        return ConstantLR()
    if isinstance(schedule, (ConstantLR, StepLR, ExponentialLR)):
        return schedule
    raise TypeError("lr_schedule must be None, 'constant', or a cymlp.schedules object "
                    f"(ConstantLR, StepLR, ExponentialLR); got {schedule!r}")


