"""cymlp.torch: networks to torch.nn.Sequential and back, exactly.

The conversions copy parameters bit for bit (``Linear.weight`` is cymlp's
``W.T``), so round trips are exact and outputs agree with ``predict`` up to
rounding. Training continued in torch with the matching loss, then brought
back, is the training cymlp would have done: the same SGD steps in both give
the same weights.
"""

import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cymlp  # noqa: E402
from cymlp.torch import Exp, from_torch, to_torch, torch_loss  # noqa: E402

nn = torch.nn

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OUTPUTS = HIDDEN + ["softmax", "exp"]
# The loss from_torch picks for each output activation when none is given.
DEFAULT_LOSS = {"softmax": "cross_entropy", "exp": "poisson"}
MODULE_TYPES = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
                "leaky_relu": nn.LeakyReLU, "identity": nn.Identity, "softmax": nn.Softmax,
                "exp": Exp}
TORCH_ACTIVATIONS = {"sigmoid": torch.sigmoid, "softmax": lambda z: torch.softmax(z, dim=1),
                     "exp": torch.exp, "identity": lambda z: z}


def outputs_tolerance(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def make_net(layer_sizes, hidden, output, bias, dtype, backend, seed=0):
    net = cymlp.MLP(layer_sizes, activation=hidden, output_activation=output,
                    loss=DEFAULT_LOSS.get(output, "mse"), bias=bias, dtype=dtype,
                    init="glorot_normal", seed=seed, backend=backend)
    # Non-zero biases, so that a bias dropped or misplaced would show.
    for layer, b in enumerate(net.biases):
        b[...] = np.linspace(-0.5, 0.5, b.shape[0]) * (layer + 1)
    return net


def torch_outputs(module, X):
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


def assert_same_state(module_a, module_b):
    linears_a = [m for m in module_a.modules() if type(m) is nn.Linear]
    linears_b = [m for m in module_b.modules() if type(m) is nn.Linear]
    assert len(linears_a) == len(linears_b)
    for a, b in zip(linears_a, linears_b):
        assert a.weight.dtype == b.weight.dtype
        assert torch.equal(a.weight, b.weight)
        assert (a.bias is None) == (b.bias is None)
        if a.bias is not None:
            assert torch.equal(a.bias, b.bias)


# ---------------------------------------------------------------- every activation, depth, bias

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("output", OUTPUTS)
def test_to_torch_matches_predict_and_round_trips_exactly(backend, dtype, output, depth, bias):
    X = np.random.default_rng(1).normal(size=(9, 4)).astype(dtype)
    tol = outputs_tolerance(dtype)
    sizes = [4, 6, 5, 3][:depth] + [3]
    # Every hidden activation, in every hidden position, across the runs.
    runs = [[HIDDEN[(start + layer) % len(HIDDEN)] for layer in range(depth - 1)]
            for start in range(len(HIDDEN) if depth > 1 else 1)]
    for run, hidden in enumerate(runs):
        net = make_net(sizes, hidden, output, bias, dtype, backend, seed=run)
        module = to_torch(net)
        what = f"hidden={hidden}"

        # The structure: Linear, activation, ..., all in the network's dtype.
        kinds = [type(m) for m in module]
        expected = []
        for name in net.activations:
            expected += [nn.Linear, MODULE_TYPES[name]]
        assert kinds == expected, what
        for linear, weights in zip(module[::2], net.weights):
            assert linear.weight.dtype == {np.float32: torch.float32,
                                           np.float64: torch.float64}[dtype]
            assert (linear.bias is not None) == bias
            assert linear.weight.requires_grad and linear.weight.device.type == "cpu"
            assert np.array_equal(linear.weight.detach().numpy(), weights.T)

        np.testing.assert_allclose(torch_outputs(module, X), net.predict(X), rtol=tol,
                                   atol=tol, err_msg=what)

        # cymlp -> torch -> cymlp: the same network, bit for bit.
        back = from_torch(module, backend=backend)
        assert back.params.dtype == net.params.dtype
        assert np.array_equal(back.params, net.params), what
        assert (back.layer_sizes, back.activations, back.bias, back.loss_name) == (
            net.layer_sizes, net.activations, net.bias, net.loss_name)
        assert back.backend == net.backend
        np.testing.assert_array_equal(back.predict(X), net.predict(X))

        # torch -> cymlp -> torch: equal state_dict tensors.
        again = to_torch(back)
        state, state_again = module.state_dict(), again.state_dict()
        assert list(state) == list(state_again)
        for key in state:
            assert state[key].dtype == state_again[key].dtype
            assert torch.equal(state[key], state_again[key]), key

        # Logits: without the output activation, and back when told which one.
        logits = to_torch(net, logits=True)
        assert type(logits[-1]) is nn.Linear and len(logits) == 2 * depth - 1
        from_logits = from_torch(logits, output_activation=output, backend=backend)
        assert np.array_equal(from_logits.params, net.params)
        assert from_logits.activations == net.activations
        np.testing.assert_array_equal(from_logits.predict(X), net.predict(X))


def test_the_copies_share_no_memory(backend):
    net = make_net([3, 4, 2], ["tanh"], "sigmoid", True, np.float64, backend)
    module = to_torch(net)
    before = [p.detach().clone() for p in module.parameters()]
    net.params[...] = 0.0
    assert all(torch.equal(p, q) for p, q in zip(module.parameters(), before))
    back = from_torch(module, backend=backend)
    saved = back.params.copy()
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
    assert np.array_equal(back.params, saved)


def test_to_torch_draws_nothing_from_torch_random_stream():
    net = cymlp.MLP([5, 7, 2], seed=0, backend="numpy")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    to_torch(net)
    to_torch(net, logits=True)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- modules made in torch

@pytest.mark.parametrize("torch_dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_module_built_in_torch_round_trips(backend, torch_dtype, bias):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8, bias=bias), nn.ReLU(), nn.Linear(8, 6, bias=bias),
                           nn.LeakyReLU(), nn.Linear(6, 3, bias=bias),
                           nn.Softmax(dim=1)).to(torch_dtype)
    net = from_torch(module, backend=backend)
    dtype = np.float32 if torch_dtype == torch.float32 else np.float64
    assert net.dtype is dtype and net.bias is bias
    assert net.activations == ("relu", "leaky_relu", "softmax")
    assert net.loss_name == "cross_entropy"
    X = np.random.default_rng(2).normal(size=(11, 4)).astype(dtype)
    tol = outputs_tolerance(dtype)
    np.testing.assert_allclose(net.predict(X), torch_outputs(module, X), rtol=tol, atol=tol)
    again = to_torch(net)
    assert list(again.state_dict()) == list(module.state_dict())
    for key, tensor in module.state_dict().items():
        assert torch.equal(again.state_dict()[key], tensor), key


def test_nested_sequentials_gaps_and_trailing_linear(backend):
    torch.manual_seed(1)
    module = nn.Sequential(
        nn.Sequential(OrderedDict(fc1=nn.Linear(3, 5), act1=nn.Tanh())),
        nn.Linear(5, 4),                # no activation: identity
        nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Sequential(nn.Linear(4, 2))),
    ).double()
    net = from_torch(module, backend=backend)
    assert net.layer_sizes == (3, 5, 4, 4, 2)
    assert net.activations == ("tanh", "identity", "sigmoid", "identity")
    assert net.loss_name == "mse"
    X = np.random.default_rng(3).normal(size=(6, 3))
    np.testing.assert_allclose(net.predict(X), torch_outputs(module, X), rtol=1e-12,
                               atol=1e-12)
    # Softmax over dim=-1 is the same axis for (n_samples, n_features) inputs.
    module.append(nn.Softmax(dim=-1))
    net = from_torch(module, backend=backend)
    assert net.activations[-1] == "softmax"
    np.testing.assert_allclose(net.predict(X), torch_outputs(module, X), rtol=1e-12,
                               atol=1e-12)


def test_loss_defaults_and_override(backend):
    def module(*tail):
        return nn.Sequential(nn.Linear(2, 3), *tail).double()

    assert from_torch(module(), backend=backend).loss_name == "mse"
    assert from_torch(module(nn.Sigmoid()), backend=backend).loss_name == "mse"
    assert from_torch(module(nn.Sigmoid()), loss="bce", backend=backend).loss_name == "bce"
    assert from_torch(module(nn.Softmax(dim=1)), backend=backend).loss_name == "cross_entropy"
    assert from_torch(module(nn.Softmax(dim=1)), loss="mse",
                      backend=backend).loss_name == "mse"
    assert from_torch(module(Exp()), backend=backend).loss_name == "poisson"
    assert from_torch(module(), output_activation="exp", backend=backend).loss_name == "poisson"
    with pytest.raises(ValueError, match="loss='bce' needs output_activation"):
        from_torch(module(nn.Softmax(dim=1)), loss="bce", backend=backend)


def test_dtype_given_converts(backend):
    torch.manual_seed(2)
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    net = from_torch(module, dtype=np.float32, backend=backend)
    assert net.dtype is np.float32
    np.testing.assert_array_equal(net.weights[0], module[0].weight.detach().numpy().T
                                  .astype(np.float32))
    # float16 and bfloat16 widen exactly when a dtype is asked for.
    for half in (torch.float16, torch.bfloat16):
        small = module.to(half)
        net = from_torch(small, dtype="float64", backend=backend)
        assert net.dtype is np.float64
        assert np.array_equal(net.weights[1], small[2].weight.double().detach().numpy().T)
    mixed = nn.Sequential(nn.Linear(3, 4).double(), nn.Linear(4, 2).float())
    assert from_torch(mixed, dtype=np.float64, backend=backend).dtype is np.float64


# ---------------------------------------------------------------- what is refused

def _linear_with(dtype):
    linear = nn.Linear(2, 2)
    linear.weight = nn.Parameter(torch.ones(2, 2, dtype=dtype), requires_grad=False)
    linear.bias = nn.Parameter(torch.ones(2, dtype=dtype), requires_grad=False)
    return linear


class MyLinear(nn.Linear):
    def forward(self, input):
        return 2 * super().forward(input)


def _nan_linear():
    linear = nn.Linear(2, 2)
    with torch.no_grad():
        linear.weight[0, 1] = float("nan")
    return linear


REFUSED = {
    "dropout": (lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3),
                                      nn.Dropout(0.1), nn.Linear(3, 1)),
                {}, ValueError,
                r"module 3 \(Dropout\) is not supported; supported: Linear, Sigmoid"),
    "nested-unsupported": (lambda: nn.Sequential(nn.Linear(2, 3),
                                                 nn.Sequential(nn.ReLU(), nn.GELU())),
                           {}, ValueError, r"module 1\.1 \(GELU\) is not supported"),
    "linear-subclass": (lambda: nn.Sequential(MyLinear(2, 2)), {}, ValueError,
                        r"module 0 \(MyLinear\) is not supported"),
    "leaky-slope": (lambda: nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(0.2)), {}, ValueError,
                    r"module 1 \(LeakyReLU\) has negative_slope=0\.2; cymlp's leaky_relu"),
    "softmax-dim-0": (lambda: nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=0)), {},
                      ValueError, r"module 1 \(Softmax\) has dim=0"),
    "softmax-dim-none": (lambda: nn.Sequential(nn.Linear(2, 2), nn.Softmax()), {}, ValueError,
                         r"module 1 \(Softmax\) has dim=None"),
    "widths": (lambda: nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(4, 1)), {},
               ValueError, r"module 2 \(Linear\) has in_features=4, but module 0 \(Linear\) "
                           r"has out_features=3"),
    "bias-disagrees": (lambda: nn.Sequential(nn.Linear(2, 3), nn.Tanh(),
                                             nn.Linear(3, 1, bias=False)),
                       {}, ValueError, r"disagree on bias \(modules 0 have one, modules 2 do "
                                       r"not\)"),
    "empty": (lambda: nn.Sequential(), {}, ValueError, "empty Sequential"),
    "empty-nested": (lambda: nn.Sequential(nn.Sequential()), {}, ValueError,
                     "empty Sequential"),
    "activation-first": (lambda: nn.Sequential(nn.ReLU(), nn.Linear(2, 2)), {}, ValueError,
                         r"module 0 \(ReLU\) comes before any Linear"),
    "two-activations": (lambda: nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Identity()), {},
                        ValueError, r"module 2 \(Identity\) follows module 1 \(ReLU\), another "
                                    "activation"),
    "hidden-softmax": (lambda: nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=1),
                                             nn.Linear(2, 2)),
                       {}, ValueError, r"module 1 \(Softmax\) is followed by more layers; "
                                       "softmax is an output activation"),
    "hidden-exp": (lambda: nn.Sequential(nn.Linear(2, 2), Exp(), nn.Linear(2, 2)), {},
                   ValueError, r"module 1 \(Exp\) is followed by more layers"),
    "output-activation-twice": (lambda: nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=1)),
                                {"output_activation": "softmax"}, ValueError,
                                r"ends in a Linear \(logits\); this one ends in module 1 "
                                r"\(Softmax\)"),
    "unknown-output-activation": (lambda: nn.Sequential(nn.Linear(2, 2)),
                                  {"output_activation": "gelu"}, ValueError,
                                  "output_activation must be one of"),
    "float16": (lambda: nn.Sequential(nn.Linear(2, 2).half()), {}, TypeError,
                r"module 0 \(Linear\)\.weight has dtype torch\.float16; cymlp computes in "
                r"float32 or float64 \(pass dtype="),
    "bfloat16": (lambda: nn.Sequential(nn.Linear(2, 2).bfloat16()), {}, TypeError,
                 r"has dtype torch\.bfloat16"),
    "integer": (lambda: nn.Sequential(_linear_with(torch.int64)), {"dtype": np.float64},
                TypeError, r"module 0 \(Linear\)\.weight has dtype torch\.int64; cymlp needs "
                           "floating-point"),
    "complex": (lambda: nn.Sequential(_linear_with(torch.complex64)), {}, TypeError,
                "torch.complex64; cymlp needs floating-point"),
    "mixed-dtypes": (lambda: nn.Sequential(nn.Linear(2, 2).double(), nn.Linear(2, 2)), {},
                     TypeError, r"mixed dtypes \(torch\.float32, torch\.float64\); pass dtype="),
    "dtype-argument": (lambda: nn.Sequential(nn.Linear(2, 2)), {"dtype": np.int32}, TypeError,
                       "dtype must be numpy.float32 or numpy.float64"),
    "nan": (lambda: nn.Sequential(_nan_linear()), {}, ValueError,
            r"module 0 \(Linear\)\.weight holds NaN or inf"),
    "meta": (lambda: nn.Sequential(nn.Linear(2, 2, device="meta")), {}, ValueError,
             r"module 0 \(Linear\)\.weight is on the meta device"),
    "bare-linear": (lambda: nn.Linear(2, 2), {}, TypeError,
                    r"must be a torch\.nn\.Sequential; got Linear \(wrap it"),
    "module-list": (lambda: nn.ModuleList([nn.Linear(2, 2)]), {}, TypeError,
                    "must be a torch.nn.Sequential; got ModuleList"),
    "not-a-module": (lambda: [nn.Linear(2, 2)], {}, TypeError,
                     "must be a torch.nn.Sequential; got list$"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_from_torch_refuses_what_it_cannot_represent(backend, case):
    make_module, kwargs, error, message = REFUSED[case]
    module = make_module()
    with pytest.raises(error, match=message):
        from_torch(module, backend=backend, **kwargs)


def test_to_torch_and_torch_loss_refuse_other_objects():
    with pytest.raises(TypeError, match="net must be a cymlp.MLP; got Sequential"):
        to_torch(nn.Sequential(nn.Linear(2, 2)))
    net = cymlp.MLP([2, 2], backend="numpy")
    with pytest.raises(TypeError, match="logits must be"):
        to_torch(net, logits="yes")
    with pytest.raises(TypeError, match="net must be a cymlp.MLP"):
        torch_loss("mse")


# ---------------------------------------------------------------- training in torch

# (output activation, loss, target kind, logits, the torch loss on the module's outputs)
HEADS = [
    ("sigmoid", "mse", "regression", False, nn.MSELoss),
    ("identity", "mse", "regression", False, nn.MSELoss),
    ("identity", "mse", "regression", True, nn.MSELoss),
    ("softmax", "mse", "probability", False, nn.MSELoss),
    ("sigmoid", "bce", "binary", False, nn.BCELoss),
    ("sigmoid", "bce", "binary", True, nn.BCEWithLogitsLoss),
    # cymlp's cross_entropy takes probability targets: CrossEntropyLoss on
    # logits with float targets of the outputs' shape is the same loss.
    ("softmax", "cross_entropy", "probability", True, nn.CrossEntropyLoss),
    ("exp", "poisson", "count", True, lambda: nn.PoissonNLLLoss(log_input=True)),
]
HEAD_IDS = [f"{output}-{loss}{'-logits' if logits else ''}"
            for output, loss, _, logits, _ in HEADS]


def train_in_torch(module, make_loss, X, Y, learning_rate, epochs, batch_size):
    """In-order batches, the last one partial: what cymlp's fit(shuffle=False) visits."""
    optimizer = torch.optim.SGD(module.parameters(), lr=learning_rate)
    loss_function = make_loss()
    x_all, y_all = torch.from_numpy(X), torch.from_numpy(Y)
    for _ in range(epochs):
        for start in range(0, X.shape[0], batch_size):
            optimizer.zero_grad()
            loss = loss_function(module(x_all[start:start + batch_size]),
                                 y_all[start:start + batch_size])
            loss.backward()
            optimizer.step()


def net_outputs_of(module, output, logits, X):
    """What the cymlp network should predict: the module's outputs, activated if logits."""
    with torch.no_grad():
        z = module(torch.from_numpy(X))
        return (TORCH_ACTIVATIONS[output](z) if logits else z).numpy()


@pytest.mark.parametrize("output, loss, kind, logits, torch_loss_type", HEADS, ids=HEAD_IDS)
def test_torch_loss_is_the_matching_one(output, loss, kind, logits, torch_loss_type):
    net = cymlp.MLP([3, 2], output_activation=output, loss=loss, backend="numpy")
    got = torch_loss(net, logits=logits)
    expected = torch_loss_type()
    assert type(got) is type(expected)
    if isinstance(got, nn.PoissonNLLLoss):
        assert got.log_input
    # And it computes the network's loss on the module's outputs.
    X, Y = np.random.default_rng(4).normal(size=(5, 3)), _targets(kind, 5, 2, 4)
    value = got(to_torch(net, logits=logits)(torch.from_numpy(X)), torch.from_numpy(Y))
    assert value.item() == pytest.approx(net.loss(X, Y), rel=1e-12)


def test_torch_loss_refuses_losses_torch_takes_on_logits_only():
    ce = cymlp.MLP([3, 2], output_activation="softmax", loss="cross_entropy", backend="numpy")
    with pytest.raises(ValueError, match="computes loss='cross_entropy' from the logits"):
        torch_loss(ce)
    poisson = cymlp.MLP([3, 2], output_activation="exp", loss="poisson", backend="numpy")
    with pytest.raises(ValueError, match="computes loss='poisson' from the logits"):
        torch_loss(poisson)
    mse = cymlp.MLP([3, 2], output_activation="sigmoid", backend="numpy")
    with pytest.raises(ValueError, match="loss='mse' is on the sigmoid outputs"):
        torch_loss(mse, logits=True)


def _targets(kind, n_samples, n_outputs, seed):
    rng = np.random.default_rng(seed)
    if kind == "regression":
        return rng.random((n_samples, n_outputs))
    if kind == "binary":
        return rng.integers(0, 2, (n_samples, n_outputs)).astype(float)
    if kind == "count":
        return rng.poisson(1.5, (n_samples, n_outputs)).astype(float)
    return rng.dirichlet(np.ones(n_outputs), size=n_samples)


@pytest.mark.parametrize("output, loss, kind, logits, torch_loss_type", HEADS, ids=HEAD_IDS)
def test_continue_training_in_torch_and_bring_it_back(backend, output, loss, kind, logits,
                                                      torch_loss_type):
    X = np.random.default_rng(5).normal(size=(12, 4))
    Y = _targets(kind, 12, 3, 5)
    net = cymlp.MLP([4, 6, 3], activation="tanh", output_activation=output, loss=loss,
                    seed=6, backend=backend)
    net.fit(X, Y, epochs=5, batch_size=4, learning_rate=0.05)
    module = to_torch(net, logits=logits)
    train_in_torch(module, torch_loss_type, X, Y, learning_rate=0.05, epochs=3, batch_size=5)
    back = from_torch(module, output_activation=output if logits else None, loss=loss,
                      backend=backend)
    assert not np.array_equal(back.params, net.params)      # torch did train it
    assert back.activations == net.activations and back.loss_name == loss
    np.testing.assert_allclose(back.predict(X), net_outputs_of(module, output, logits, X),
                               rtol=1e-12, atol=1e-12)
    # And it trains on in cymlp from there.
    back.fit(X, Y, epochs=2, batch_size=4, learning_rate=0.05)
    assert np.isfinite(back.loss(X, Y))


@pytest.mark.parametrize("batch_size", [12, 5], ids=["full-batch", "batches-of-5"])
@pytest.mark.parametrize("output, loss, kind, logits, torch_loss_type", HEADS, ids=HEAD_IDS)
def test_same_sgd_steps_in_cymlp_and_torch_give_the_same_weights(
        backend, output, loss, kind, logits, torch_loss_type, batch_size):
    X = np.random.default_rng(7).normal(size=(12, 4))
    Y = _targets(kind, 12, 3, 7)
    for bias in (True, False):
        net = cymlp.MLP([4, 5, 4, 3], activation=["relu", "sigmoid"], output_activation=output,
                        loss=loss, bias=bias, init="glorot_normal", seed=8, backend=backend)
        module = to_torch(net, logits=logits)
        net.fit(X, Y, batch_size=batch_size, shuffle=False, learning_rate=0.1, epochs=6)
        train_in_torch(module, torch_loss_type, X, Y, learning_rate=0.1, epochs=6,
                       batch_size=batch_size)
        trained_in_torch = from_torch(module, output_activation=output if logits else None,
                                      loss=loss, backend=backend)
        np.testing.assert_allclose(trained_in_torch.params, net.params, rtol=1e-10,
                                   atol=1e-12, err_msg=f"bias={bias}")


# ---------------------------------------------------------------- importing

def test_missing_torch_is_a_clear_import_error():
    script = ("import sys\n"
              "sys.modules['torch'] = None\n"      # what a missing torch looks like
              "import cymlp\n"
              "try:\n"
              "    import cymlp.torch\n"
              "except ImportError as error:\n"
              "    print(error)\n"
              "else:\n"
              "    print('imported')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'pip install "cymlp[torch]"' in result.stdout


def test_import_cymlp_does_not_import_torch():
    script = ("import sys, cymlp\n"
              "net = cymlp.MLP([2, 2], backend='numpy')\n"
              "print('torch' in sys.modules, 'cymlp.torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
