"""cymlp against PyTorch: same network, same batches, same numbers.

DESIGN.md promises torch's conventions: losses averaged as MSELoss, BCELoss,
CrossEntropyLoss (probability targets) and PoissonNLLLoss (log_input=True),
sample weights as torch's reduction="none" losses then a weighted mean, steps
of torch.optim.SGD and
torch.optim.Adam (one parameter group, weight decay on weights and biases),
schedules as torch's StepLR / ExponentialLR stepped once per epoch, and the
last partial batch used. Each test builds the torch twin of a cymlp network
from its initial weights (cymlp ``weights[l]`` is (n_in, n_out), torch's
``Linear.weight`` is (n_out, n_in)), trains both in float64 on the same
in-order batches, and compares the weights.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cymlp import MLP  # noqa: E402
from cymlp.optim import make_optimizer  # noqa: E402
from cymlp.schedules import ExponentialLR, StepLR  # noqa: E402

torch.set_num_threads(1)

RTOL = 1e-9
ATOL = 1e-12

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
# (output activation, loss, kind of target)
HEADS = [("sigmoid", "mse", "regression"), ("tanh", "mse", "regression"),
         ("relu", "mse", "regression"), ("leaky_relu", "mse", "regression"),
         ("identity", "mse", "regression"), ("softmax", "mse", "probability"),
         ("sigmoid", "bce", "binary"), ("softmax", "cross_entropy", "probability"),
         ("exp", "poisson", "count")]

OPTIMIZERS = {
    "sgd": (dict(optimizer="sgd", learning_rate=0.1),
            lambda params: torch.optim.SGD(params, lr=0.1)),
    "sgd-momentum": (dict(optimizer="sgd", learning_rate=0.05, momentum=0.9),
                     lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9)),
    "sgd-nesterov-weight-decay": (
        dict(optimizer="sgd", learning_rate=0.05, momentum=0.8, nesterov=True,
             weight_decay=0.05),
        lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.8, nesterov=True,
                                       weight_decay=0.05)),
    "adam": (dict(optimizer="adam", learning_rate=0.01),
             lambda params: torch.optim.Adam(params, lr=0.01)),
    "adam-weight-decay": (
        dict(optimizer="adam", learning_rate=0.02, betas=(0.8, 0.95), eps=1e-6,
             weight_decay=0.1),
        lambda params: torch.optim.Adam(params, lr=0.02, betas=(0.8, 0.95), eps=1e-6,
                                        weight_decay=0.1)),
}


def torch_activation(name):
    return {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, negative_slope=0.01),
        "identity": lambda z: z,
        "softmax": lambda z: torch.softmax(z, dim=1),
        "exp": torch.exp,
    }[name]


class TorchTwin(torch.nn.Module):
    """The torch network with a cymlp network's current weights."""

    def __init__(self, net):
        super().__init__()
        self.layers = torch.nn.ModuleList()
        for layer, weights in enumerate(net.weights):
            n_in, n_out = weights.shape
            linear = torch.nn.Linear(n_in, n_out, bias=net.bias, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.array(weights.T, dtype=np.float64)))
                if net.bias:
                    linear.bias.copy_(torch.from_numpy(
                        np.array(net.biases[layer], dtype=np.float64)))
            self.layers.append(linear)
        self.hidden = [torch_activation(name) for name in net.activations[:-1]]
        self.output = net.activations[-1]
        self.loss_name = net.loss_name

    def logits(self, x):
        for linear, activation in zip(self.layers[:-1], self.hidden):
            x = activation(linear(x))
        return self.layers[-1](x)

    def forward(self, x):
        return torch_activation(self.output)(self.logits(x))

    def loss(self, x, y):
        if self.loss_name == "cross_entropy":
            # CrossEntropyLoss takes the logits and applies log_softmax itself;
            # float targets of the same shape are class probabilities.
            return torch.nn.CrossEntropyLoss()(self.logits(x), y)
        if self.loss_name == "bce":
            return torch.nn.BCELoss()(self(x), y)
        if self.loss_name == "poisson":
            # On the log-means z; the network's outputs are exp(z).
            return torch.nn.PoissonNLLLoss(log_input=True)(self.logits(x), y)
        return torch.nn.MSELoss()(self(x), y)

    def row_losses(self, x, y):
        """Each row's loss: torch's reduction="none", then the mean over outputs
        (the sum for cross-entropy, which has one loss per row already)."""
        if self.loss_name == "cross_entropy":
            return torch.nn.CrossEntropyLoss(reduction="none")(self.logits(x), y)
        if self.loss_name == "bce":
            return torch.nn.BCELoss(reduction="none")(self(x), y).mean(dim=1)
        if self.loss_name == "poisson":
            losses = torch.nn.PoissonNLLLoss(log_input=True, reduction="none")(self.logits(x), y)
            return losses.mean(dim=1)
        return torch.nn.MSELoss(reduction="none")(self(x), y).mean(dim=1)

    def weighted_loss(self, x, y, weights):
        """sum_i w_i l_i / sum_i w_i."""
        return (weights * self.row_losses(x, y)).sum() / weights.sum()

    def flat_grad(self, net):
        """The parameters' .grad, laid out as cymlp's flat parameter vector."""
        parts = []
        for linear in self.layers:
            parts.append(linear.weight.grad.numpy().T.ravel())
            if net.bias:
                parts.append(linear.bias.grad.numpy())
        return np.concatenate(parts)


def assert_same_weights(net, twin, what=""):
    for layer, linear in enumerate(twin.layers):
        np.testing.assert_allclose(net.weights[layer], linear.weight.detach().numpy().T,
                                   rtol=RTOL, atol=ATOL, err_msg=f"weights[{layer}] {what}")
        if net.bias:
            np.testing.assert_allclose(net.biases[layer], linear.bias.detach().numpy(),
                                       rtol=RTOL, atol=ATOL, err_msg=f"biases[{layer}] {what}")


def train_torch(twin, make_optimizer, X, Y, epochs, batch_size, make_scheduler=None):
    """In-order batches, the last one partial; (epoch mean losses, lr per epoch)."""
    optimizer = make_optimizer(twin.parameters())
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    x_all, y_all = torch.from_numpy(X), torch.from_numpy(Y)
    epoch_losses, rates = [], []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        total = 0.0
        for start in range(0, X.shape[0], batch_size):
            x, y = x_all[start:start + batch_size], y_all[start:start + batch_size]
            optimizer.zero_grad()
            loss = twin.loss(x, y)
            loss.backward()
            optimizer.step()
            total += loss.item() * x.shape[0]
        epoch_losses.append(total / X.shape[0])
        if scheduler is not None:
            scheduler.step()
    return epoch_losses, rates


def make_problem(seed, n_samples, n_features, n_outputs, kind):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    if kind == "regression":
        Y = rng.random((n_samples, n_outputs))
    elif kind == "binary":
        Y = rng.integers(0, 2, (n_samples, n_outputs)).astype(float)
    elif kind == "count":
        Y = rng.poisson(1.5, (n_samples, n_outputs)).astype(float)
    else:
        Y = rng.dirichlet(np.ones(n_outputs), size=n_samples)
    return X, Y


# ---------------------------------------------------------------- the grid

@pytest.mark.parametrize("output, loss, kind", HEADS,
                         ids=[f"{output}-{loss}" for output, loss, _ in HEADS])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_training_matches_torch(backend, opt_name, output, loss, kind):
    cymlp_kwargs, make_optimizer = OPTIMIZERS[opt_name]
    head_index = HEADS.index((output, loss, kind))
    # 10 rows in batches of 4: the last batch has 2 rows.
    X, Y = make_problem(head_index, 10, 4, 3, kind)
    for index, hidden in enumerate(HIDDEN):
        # Two hidden layers with different activations, through the list form.
        activation = [hidden, HIDDEN[(index + 1) % len(HIDDEN)]]
        bias = index % 2 == 0 or loss == "cross_entropy"
        net = MLP([4, 5, 4, 3], activation=activation, output_activation=output, loss=loss,
                  bias=bias, init="glorot_normal", seed=10 * head_index + index,
                  backend=backend)
        twin = TorchTwin(net)
        what = f"activation={activation}, bias={bias}"
        # Before training: same outputs, same loss.
        x_all = torch.from_numpy(X)
        np.testing.assert_allclose(net.predict(X), twin(x_all).detach().numpy(),
                                   rtol=RTOL, atol=ATOL, err_msg=what)
        assert net.loss(X, Y) == pytest.approx(twin.loss(x_all, torch.from_numpy(Y)).item(),
                                               rel=RTOL)
        history = net.fit(X, Y, epochs=4, batch_size=4, shuffle=False, **cymlp_kwargs)
        losses, _ = train_torch(twin, make_optimizer, X, Y, epochs=4, batch_size=4)
        assert_same_weights(net, twin, what)
        # History.loss: the mean over rows of the losses before each step.
        np.testing.assert_allclose(history.loss, losses, rtol=RTOL, err_msg=what)
        # And after training, the loss on all rows still agrees.
        assert net.loss(X, Y) == pytest.approx(
            twin.loss(x_all, torch.from_numpy(Y)).item(), rel=RTOL)


# ---------------------------------------------------------------- single cases

def test_per_sample_sgd_tutorial_network(backend):
    # The tutorial's set-up: 30-5-3 sigmoid, MSE, no bias, one sample per step.
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (3, 30)).astype(float)
    Y = np.eye(3)
    net = MLP([30, 5, 3], bias=False, init="normal", seed=1, backend=backend)
    twin = TorchTwin(net)
    net.fit(X, Y, epochs=20, learning_rate=0.5, batch_size=1, shuffle=False)
    train_torch(twin, lambda p: torch.optim.SGD(p, lr=0.5), X, Y, epochs=20, batch_size=1)
    assert_same_weights(net, twin)


@pytest.mark.parametrize("schedule, torch_scheduler", [
    (StepLR(2, gamma=0.5),
     lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)),
    (StepLR(3, gamma=0.3),
     lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.3)),
    (ExponentialLR(0.7),
     lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.7)),
], ids=["StepLR-2-0.5", "StepLR-3-0.3", "ExponentialLR-0.7"])
@pytest.mark.parametrize("opt_name", ["sgd-momentum", "adam"])
def test_schedule_matches_torch(backend, opt_name, schedule, torch_scheduler):
    cymlp_kwargs, make_optimizer = OPTIMIZERS[opt_name]
    X, Y = make_problem(5, 11, 3, 2, "regression")
    net = MLP([3, 6, 2], activation="tanh", output_activation="sigmoid", seed=2,
              backend=backend)
    twin = TorchTwin(net)
    history = net.fit(X, Y, epochs=7, batch_size=3, shuffle=False, lr_schedule=schedule,
                      **cymlp_kwargs)
    losses, rates = train_torch(twin, make_optimizer, X, Y, epochs=7, batch_size=3,
                                make_scheduler=torch_scheduler)
    np.testing.assert_allclose(history.learning_rate, rates, rtol=1e-13)
    assert len(set(rates)) > 1
    assert_same_weights(net, twin)
    np.testing.assert_allclose(history.loss, losses, rtol=RTOL)


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_state_carries_over_like_one_torch_optimizer(backend, opt_name):
    # fit, then fit again, then partial_fit: one torch optimizer throughout.
    cymlp_kwargs, make_optimizer = OPTIMIZERS[opt_name]
    X, Y = make_problem(6, 9, 3, 3, "probability")
    net = MLP([3, 4, 3], activation="relu", output_activation="softmax",
              loss="cross_entropy", init="he_normal", seed=3, backend=backend)
    twin = TorchTwin(net)
    net.fit(X, Y, epochs=2, batch_size=4, shuffle=False, **cymlp_kwargs)
    net.fit(X, Y, epochs=1, batch_size=4, shuffle=False, **cymlp_kwargs)
    net.partial_fit(X, Y, batch_size=4, **cymlp_kwargs)
    train_torch(twin, make_optimizer, X, Y, epochs=4, batch_size=4)
    assert_same_weights(net, twin)


def test_single_output_binary_bce(backend):
    X, Y = make_problem(7, 13, 4, 1, "binary")
    net = MLP([4, 6, 1], activation="leaky_relu", output_activation="sigmoid", loss="bce",
              init="he_uniform", seed=4, backend=backend)
    twin = TorchTwin(net)
    kwargs, make_optimizer = OPTIMIZERS["adam-weight-decay"]
    net.fit(X, Y, epochs=5, batch_size=5, shuffle=False, **kwargs)
    train_torch(twin, make_optimizer, X, Y, epochs=5, batch_size=5)
    assert_same_weights(net, twin)
    outputs = twin(torch.from_numpy(X)).detach().numpy()[:, 0]
    assert net.accuracy(X, Y) == np.mean((outputs > 0.5) == (Y[:, 0] > 0.5))


@pytest.mark.parametrize("output, loss, kind", HEADS,
                         ids=[f"{output}-{loss}" for output, loss, _ in HEADS])
def test_loss_value_matches_torch(backend, output, loss, kind):
    X, Y = make_problem(8, 17, 5, 4, kind)
    # Some larger pre-activations, still inside the range where torch's
    # BCELoss (which clamps log at -100) is exact.
    X = 3 * X
    net = MLP([5, 7, 4], activation="tanh", output_activation=output, loss=loss,
              init="glorot_normal", seed=5, backend=backend)
    for b in net.biases:
        b[...] = np.linspace(-1, 1, b.shape[0])
    twin = TorchTwin(net)
    expected = twin.loss(torch.from_numpy(X), torch.from_numpy(Y)).item()
    assert net.loss(X, Y) == pytest.approx(expected, rel=1e-12)


def test_poisson_overflow_is_divergence_not_a_crash(backend):
    # exp(z) overflows: the loss is inf, the step before it is undone, and
    # fit says so, without a floating-point warning.
    import warnings

    from cymlp import TrainingDiverged
    X, Y = make_problem(9, 6, 3, 2, "count")
    net = MLP([3, 4, 2], activation="relu", output_activation="exp", loss="poisson",
              seed=6, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TrainingDiverged):
            net.fit(X, Y * 1e3, epochs=20, batch_size=2, learning_rate=10.0, shuffle=False)
    assert np.isfinite(net.params).all()
    assert np.isfinite(net.loss(X, Y))


# ---------------------------------------------------------------- sample weights

WEIGHTS = np.array([0.5, 2.0, 0.0, 1.0, 3.0, 0.25, 1.0, 0.0, 0.0, 1.5])


@pytest.mark.parametrize("output, loss, kind", HEADS,
                         ids=[f"{output}-{loss}" for output, loss, _ in HEADS])
def test_weighted_loss_and_grad_match_torch(backend, output, loss, kind):
    X, Y = make_problem(10, 10, 4, 3, kind)
    net = MLP([4, 5, 3], activation="tanh", output_activation=output, loss=loss,
              init="glorot_normal", seed=7, backend=backend)
    twin = TorchTwin(net)
    value, grad = net.loss_and_grad(X, Y, WEIGHTS)
    expected = twin.weighted_loss(torch.from_numpy(X), torch.from_numpy(Y),
                                  torch.from_numpy(WEIGHTS))
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=RTOL)
    np.testing.assert_allclose(grad, twin.flat_grad(net), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("output, loss, kind", [HEADS[0], HEADS[-3], HEADS[-2], HEADS[-1]],
                         ids=["sigmoid-mse", "sigmoid-bce", "softmax-cross_entropy",
                              "exp-poisson"])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_weighted_training_matches_torch(backend, opt_name, output, loss, kind):
    # The trainer's steps with weights: in-order batches of 4 (the last of 2;
    # the second batch has rows of weight 0), each a step on its weighted mean.
    cymlp_kwargs, make_torch_optimizer = OPTIMIZERS[opt_name]
    X, Y = make_problem(11, 10, 4, 3, kind)
    net = MLP([4, 5, 3], activation="sigmoid", output_activation=output, loss=loss,
              init="glorot_normal", seed=8, backend=backend)
    twin = TorchTwin(net)
    options = {key: value for key, value in cymlp_kwargs.items() if key != "optimizer"}
    optimizer = make_optimizer(cymlp_kwargs["optimizer"], **options)
    trainer = net._kernels.Trainer(net._params, net._layout, net._loss_code, X, Y, 4,
                                   optimizer, net._optimizer_state, 0, sample_weight=WEIGHTS)
    torch_optimizer = make_torch_optimizer(twin.parameters())
    x_all, y_all, w_all = torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(WEIGHTS)
    order = np.arange(10)
    for _ in range(3):
        loss_sum, correct, done = trainer.run(order, 0, 10)
        expected_sum = 0.0
        for start in range(0, 10, 4):
            batch = slice(start, start + 4)
            torch_optimizer.zero_grad()
            weighted = twin.weighted_loss(x_all[batch], y_all[batch], w_all[batch])
            weighted.backward()
            torch_optimizer.step()
            expected_sum += weighted.item() * WEIGHTS[batch].sum()
        assert done == 10 and isinstance(correct, float)
        assert loss_sum == pytest.approx(expected_sum, rel=RTOL)
    assert trainer.step == 9
    assert_same_weights(net, twin)
