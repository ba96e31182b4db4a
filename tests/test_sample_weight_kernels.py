"""Per-row sample weights in the kernels: ``Trainer``, ``evaluate``, ``loss_and_grad``.

The promise (both backends): each batch's objective is the weighted mean
``sum w_i l_i / sum w_i`` of its rows' losses; a batch whose weights sum to 0
is skipped (no step, no optimizer change, its rows counted done); sums of
losses and of correct rows are weighted. So integer weights are repeated
rows, a weight of 0 is a dropped row, weights of 1 are no weights (to the
bit), and scaling every weight by a constant changes nothing but rounding.
"""

import numpy as np
import pytest
from _helpers import KERNEL_OPTIMIZERS as OPTIMIZERS

import cymlp
from cymlp import MLP
from cymlp.optim import SGD, Adam

BOTH_BACKENDS = len(cymlp.available_backends()) == 2

# (output activation, loss, kind of targets)
HEADS = {
    "sigmoid-mse": ("sigmoid", "mse", "regression"),
    "softmax-cross_entropy": ("softmax", "cross_entropy", "onehot"),
    "exp-poisson": ("exp", "poisson", "count"),
}
N_ROWS = 12


def problem(make_data, dtype, kind, n_rows=N_ROWS, seed=0):
    X, Y = make_data(n_rows, 4, 3, seed=seed, kind=kind)
    return X.astype(dtype), Y.astype(dtype)


def network(backend, dtype, head, seed=3, hidden="tanh"):
    output, loss, _ = HEADS[head]
    return MLP([4, 5, 3], activation=hidden, output_activation=output, loss=loss,
               dtype=dtype, seed=seed, backend=backend)


def trainer(net, X, Y, batch_size, opt_name, sample_weight=None):
    """A trainer on ``net`` (its params and optimizer state, updated in place)."""
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=net.dtype)
    return net._kernels.Trainer(net._params, net._layout, net._loss_code, X, Y, batch_size,
                                OPTIMIZERS[opt_name](), net._optimizer_state, 0, weights)


def epochs(trainer, n_rows, n_epochs=3, seed=5, cut=7):
    """Shuffled epochs, each in two runs (cut at ``cut`` rows): the results of every run."""
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(n_epochs):
        order = rng.permutation(n_rows).astype(np.intp)
        results.append(trainer.run(order, 0, cut))
        results.append(trainer.run(order, cut, n_rows))
    return results


def close(a, b, dtype):
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2 * max(1.0, np.abs(b).max()))


def random_weights(n_rows, seed=1):
    """Weights in [0.1, 3) with a few zeros."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.1, 3.0, n_rows)
    weights[rng.choice(n_rows, n_rows // 4, replace=False)] = 0.0
    return weights


# ---------------------------------------------------------------- weights of 1 are no weights

@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 3, N_ROWS])
@pytest.mark.parametrize("head", list(HEADS))
def test_unit_weights_are_no_weights_to_the_bit(backend, dtype, head, batch_size, opt_name,
                                                make_data):
    X, Y = problem(make_data, dtype, HEADS[head][2])
    plain, weighted = network(backend, dtype, head), network(backend, dtype, head)
    results = epochs(trainer(plain, X, Y, batch_size, opt_name), N_ROWS)
    weighted_trainer = trainer(weighted, X, Y, batch_size, opt_name, np.ones(N_ROWS))
    weighted_results = epochs(weighted_trainer, N_ROWS)
    assert weighted_results == results
    assert all(isinstance(correct, float) for _, correct, _ in weighted_results)
    assert all(isinstance(correct, int) for _, correct, _ in results)
    np.testing.assert_array_equal(weighted.params, plain.params)
    np.testing.assert_array_equal(weighted._optimizer_state, plain._optimizer_state)
    assert weighted_trainer.step == 3 * -(-7 // batch_size) + 3 * -(-5 // batch_size)
    ones = np.ones(N_ROWS, dtype=dtype)
    assert weighted.loss_and_grad(X, Y, ones)[0] == plain.loss_and_grad(X, Y)[0]
    np.testing.assert_array_equal(weighted.loss_and_grad(X, Y, ones)[1],
                                  plain.loss_and_grad(X, Y)[1])
    kernels = plain._kernels
    assert (kernels.evaluate(plain._params, plain._layout, plain._loss_code, X, Y, 5, ones)
            == kernels.evaluate(plain._params, plain._layout, plain._loss_code, X, Y, 5))


# ---------------------------------------------------------------- weight 0 drops the row

@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("head", list(HEADS))
def test_weight_zero_drops_the_row_one_row_at_a_time(backend, dtype, head, opt_name,
                                                     make_data):
    # batch_size=1, rows in order: zero weights (first, inner, two in a row,
    # last) give the training on the other rows alone, to the bit.
    X, Y = problem(make_data, dtype, HEADS[head][2])
    weights = np.ones(N_ROWS)
    weights[[0, 4, 5, 11]] = 0
    kept = np.flatnonzero(weights).astype(np.intp)
    dropped, weighted = network(backend, dtype, head), network(backend, dtype, head)
    dropped_trainer = trainer(dropped, X, Y, 1, opt_name)
    weighted_trainer = trainer(weighted, X, Y, 1, opt_name, weights)
    order = np.arange(N_ROWS, dtype=np.intp)
    for _ in range(2):
        loss_sum, correct, done = weighted_trainer.run(order, 0, N_ROWS)
        assert (loss_sum, correct) == dropped_trainer.run(kept, 0, kept.shape[0])[:2]
        assert done == N_ROWS
    assert weighted_trainer.step == dropped_trainer.step == 2 * kept.shape[0]
    np.testing.assert_array_equal(weighted.params, dropped.params)
    np.testing.assert_array_equal(weighted._optimizer_state, dropped._optimizer_state)


@pytest.mark.parametrize("opt_name", ["sgd", "momentum", "adam"])
def test_one_row_steps_do_not_depend_on_a_positive_weight(backend, dtype, opt_name,
                                                          make_data):
    # The weighted mean of one row is its loss: only the sums returned scale.
    X, Y = problem(make_data, dtype, "regression")
    weights = np.linspace(0.5, 4.0, N_ROWS)
    plain, weighted = network(backend, dtype, "sigmoid-mse"), network(backend, dtype,
                                                                      "sigmoid-mse")
    order = np.arange(N_ROWS, dtype=np.intp)
    loss_sum = trainer(plain, X, Y, 1, opt_name).run(order, 0, N_ROWS)[0]
    weighted_sum = trainer(weighted, X, Y, 1, opt_name, weights).run(order, 0, N_ROWS)[0]
    np.testing.assert_array_equal(weighted.params, plain.params)
    assert weighted_sum != pytest.approx(loss_sum, rel=1e-2)


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_a_batch_of_weight_zero_is_skipped(backend, dtype, opt_name, make_data):
    # Batches of 3 in order; the second and the fourth weigh 0: no step, no
    # change of the optimizer state, rows done; as if they were not there.
    X, Y = problem(make_data, dtype, "regression")
    weights = np.ones(N_ROWS)
    weights[3:6] = weights[9:12] = 0
    kept = np.flatnonzero(weights).astype(np.intp)
    dropped, weighted = network(backend, dtype, "sigmoid-mse"), network(backend, dtype,
                                                                        "sigmoid-mse")
    dropped_trainer = trainer(dropped, X, Y, 3, opt_name)
    weighted_trainer = trainer(weighted, X, Y, 3, opt_name, weights)
    order = np.arange(N_ROWS, dtype=np.intp)
    assert weighted_trainer.run(order, 0, N_ROWS) == (
        *dropped_trainer.run(kept, 0, kept.shape[0])[:2], N_ROWS)
    assert weighted_trainer.step == dropped_trainer.step == 2
    np.testing.assert_array_equal(weighted.params, dropped.params)
    np.testing.assert_array_equal(weighted._optimizer_state, dropped._optimizer_state)
    # A run of nothing but weight 0: nothing moves.
    before = weighted.params.copy(), weighted._optimizer_state.copy()
    assert weighted_trainer.run(np.arange(3, 6, dtype=np.intp), 0, 3) == (0.0, 0.0, 3)
    assert weighted_trainer.step == 2
    np.testing.assert_array_equal(weighted.params, before[0])
    np.testing.assert_array_equal(weighted._optimizer_state, before[1])


@pytest.mark.parametrize("opt_name", ["sgd", "nesterov", "adam"])
@pytest.mark.parametrize("head", list(HEADS))
def test_weight_zero_drops_the_row_from_a_batch(backend, dtype, head, opt_name, make_data):
    # One batch of all rows, two of weight 0, with inputs and targets so
    # large that their outputs, losses or deltas overflow (which must not
    # matter: 0 times inf would be NaN); and loss_and_grad the same way.
    X, Y = problem(make_data, dtype, HEADS[head][2])
    X[[2, 7]] *= 1e4 if dtype == np.float32 else 1e200
    Y[[2, 7]] = 1e30 if dtype == np.float32 else 1e300
    weights = np.ones(N_ROWS)
    weights[[2, 7]] = 0
    kept = np.flatnonzero(weights)
    dropped = network(backend, dtype, head, hidden="relu")
    weighted = network(backend, dtype, head, hidden="relu")
    value, grad = weighted.loss_and_grad(X, Y, weights)
    expected_value, expected_grad = dropped.loss_and_grad(X[kept], Y[kept])
    close(value, expected_value, dtype)
    close(grad, expected_grad, dtype)
    loss_sum, correct, done = trainer(weighted, X, Y, N_ROWS, opt_name, weights).run(
        np.arange(N_ROWS, dtype=np.intp), 0, N_ROWS)
    expected = trainer(dropped, X[kept], Y[kept], kept.shape[0], opt_name).run(
        np.arange(kept.shape[0], dtype=np.intp), 0, kept.shape[0])
    close(loss_sum, expected[0], dtype)
    assert (correct, done) == (expected[1], N_ROWS)
    close(weighted.params, dropped.params, dtype)


# ---------------------------------------------------------------- integer weights repeat rows

@pytest.mark.parametrize("opt_name", ["sgd", "momentum", "adam-weight_decay"])
@pytest.mark.parametrize("head", list(HEADS))
def test_integer_weights_are_repeated_rows(backend, dtype, head, opt_name, make_data):
    X, Y = problem(make_data, dtype, HEADS[head][2])
    counts = np.array([2, 1, 0, 3, 1, 1, 4, 0, 1, 2, 1, 1])
    X_rep, Y_rep = np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0)
    weights = counts.astype(dtype)
    weighted, repeated = network(backend, dtype, head), network(backend, dtype, head)
    # loss_and_grad
    value, grad = weighted.loss_and_grad(X, Y, weights)
    expected_value, expected_grad = repeated.loss_and_grad(X_rep, Y_rep)
    close(value, expected_value, dtype)
    close(grad, expected_grad, dtype)
    # evaluate, the module's and the trainer's
    kernels = weighted._kernels
    loss_sum, correct = kernels.evaluate(weighted._params, weighted._layout,
                                         weighted._loss_code, X, Y, 5, weights)
    expected_sum, expected_correct = kernels.evaluate(repeated._params, repeated._layout,
                                                      repeated._loss_code, X_rep, Y_rep, 5)
    close(loss_sum, expected_sum, dtype)
    assert correct == expected_correct and isinstance(correct, float)
    weighted_trainer = trainer(weighted, X, Y, N_ROWS, opt_name, weights)
    repeated_trainer = trainer(repeated, X_rep, Y_rep, X_rep.shape[0], opt_name)
    evaluated = weighted_trainer.evaluate(X, Y, weights)
    close(evaluated[0], expected_sum, dtype)
    assert evaluated[1] == expected_correct
    # One step on the whole (weighted) batch.
    loss_sum, correct, done = weighted_trainer.run(np.arange(N_ROWS, dtype=np.intp), 0,
                                                   N_ROWS)
    expected = repeated_trainer.run(np.arange(X_rep.shape[0], dtype=np.intp), 0,
                                    X_rep.shape[0])
    close(loss_sum, expected[0], dtype)
    assert (correct, done, weighted_trainer.step) == (expected[1], N_ROWS, 1)
    close(weighted.params, repeated.params, dtype)
    close(weighted._optimizer_state, repeated._optimizer_state, dtype)


# ---------------------------------------------------------------- scale does not matter

@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 3, N_ROWS])
@pytest.mark.parametrize("scale", [7.3, 1 / 64])
def test_scaling_the_weights_changes_nothing(backend, dtype, scale, batch_size, opt_name,
                                             make_data):
    X, Y = problem(make_data, dtype, "count")
    weights = random_weights(N_ROWS)
    base, scaled = network(backend, dtype, "exp-poisson"), network(backend, dtype,
                                                                   "exp-poisson")
    results = epochs(trainer(base, X, Y, batch_size, opt_name, weights), N_ROWS)
    scaled_results = epochs(trainer(scaled, X, Y, batch_size, opt_name, scale * weights),
                            N_ROWS)
    for (loss_sum, correct, done), (scaled_sum, scaled_correct, scaled_done) in zip(
            results, scaled_results):
        close(scaled_sum, scale * loss_sum, dtype)
        close(scaled_correct, scale * correct, dtype)
        assert scaled_done == done
    close(scaled.params, base.params, dtype)
    value, grad = base.loss_and_grad(X, Y, weights)
    scaled_value, scaled_grad = base.loss_and_grad(X, Y, scale * weights)
    close(scaled_value, value, dtype)
    close(scaled_grad, grad, dtype)


# ---------------------------------------------------------------- loss_and_grad in blocks

@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_loss_and_grad_in_blocks_is_the_whole(backend, dtype, weighted, make_data,
                                              monkeypatch):
    # Blocks of 4 rows (the last one partial; with weights, one of weight 0)
    # give what one block of all rows gives.
    X, Y = problem(make_data, dtype, "onehot", n_rows=23)
    weights = random_weights(23) if weighted else None
    if weighted:
        weights[8:12] = 0
    net = network(backend, dtype, "softmax-cross_entropy")
    whole = net.loss_and_grad(X, Y, weights)
    from cymlp import _params
    width = int(net._layout[0, 0] + net._layout[:, 1].sum() + 3 * net._layout[:, 1].max())
    monkeypatch.setattr(_params, "INFERENCE_BLOCK_ELEMENTS", 4 * width)
    assert _params.block_rows(net._layout, 23) == 4
    blocks = net.loss_and_grad(X, Y, weights)
    close(blocks[0], whole[0], dtype)
    close(blocks[1], whole[1], dtype)


def test_loss_and_grad_of_many_rows_uses_blas_in_blocks(backend):
    # An L-BFGS objective on a large data set: one call, products through BLAS.
    from cymlp import _params
    net = MLP([20, 64, 5], activation="relu", output_activation="softmax",
              loss="cross_entropy", seed=0, backend=backend)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 20))
    Y = np.eye(5)[rng.integers(0, 5, 20000)]
    rows = _params.block_rows(net._layout, 20000)
    assert rows < 20000 and net._kernels.uses_blas(net._layout, rows)
    weights = rng.uniform(0, 2, 20000)
    value, grad = net.loss_and_grad(X, Y, weights)
    halves = [net.loss_and_grad(X[part], Y[part], weights[part])
              for part in (slice(0, 10000), slice(10000, None))]
    sums = [weights[:10000].sum(), weights[10000:].sum()]
    expected = (sums[0] * halves[0][0] + sums[1] * halves[1][0]) / sum(sums)
    assert value == pytest.approx(expected, rel=1e-10)
    expected_grad = (sums[0] * halves[0][1] + sums[1] * halves[1][1]) / sum(sums)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-14)


# ---------------------------------------------------------------- divergence with weights

def one_weight_trainer(backend, X, weights, learning_rate=0.1):
    """A 1-1 identity network, MSE, plain SGD, weight 0.5, one row per batch."""
    from cymlp._codes import Activation
    from cymlp._params import build_layout
    module = MLP([1, 1], backend=backend)._kernels
    layout, _ = build_layout([1, 1], [Activation.IDENTITY], False)
    params = np.array([0.5])
    return params, module.Trainer(params, layout, 0, X, np.zeros_like(X), 1,
                                  SGD(learning_rate), np.zeros((2, 1)), 0, weights)


def test_an_undo_reaches_back_over_a_run_without_steps(backend):
    # Run 1 takes two steps; run 2 weighs 0 (rows done, no step); run 3's
    # first loss overflows: the step undone is run 1's last.
    X = np.array([[1.0], [2.0], [3.0], [1e300]])
    weights = np.array([1.0, 1.0, 0.0, 1.0])
    params, weighted = one_weight_trainer(backend, X, weights)
    assert weighted.run(np.array([0, 1], dtype=np.intp), 0, 2)[2] == 2
    after_first = 0.5 * (1 - 0.1 * 2 * 1.0)     # w -= lr * 2 (w x - 0) x, with x = 1
    after_two = params[0]
    assert weighted.run(np.array([2, 2, 2], dtype=np.intp), 0, 3) == (0.0, 0.0, 3)
    assert params[0] == after_two and weighted.step == 2
    assert weighted.run(np.array([3, 0], dtype=np.intp), 0, 2) == (0.0, 0.0, -1)
    assert weighted.step == 1 and params[0] == pytest.approx(after_first, rel=1e-15)
    # Then training goes on from there.
    assert weighted.run(np.array([1], dtype=np.intp), 0, 1)[2] == 1
    assert weighted.step == 2 and params[0] == after_two


def test_an_undo_steps_back_over_batches_of_weight_zero(backend):
    # Row 0 steps, rows 1 and 2 weigh 0, row 3's loss overflows: the step
    # undone is row 0's, the last one taken.
    X = np.array([[1.0], [2.0], [3.0], [1e300]])
    params, weighted = one_weight_trainer(backend, X, np.array([1.0, 0.0, 0.0, 1.0]))
    assert weighted.run(np.array([0, 1, 2, 3, 0], dtype=np.intp), 0, 5) == (0.0, 0.0, 0)
    assert weighted.step == 0 and params[0] == 0.5


def test_weight_zero_rows_before_an_overflow_are_no_step_to_undo(backend):
    # The first rows of the fit weigh 0, then a loss overflows: nothing was
    # stepped on, so nothing is undone; the rows of weight 0 count as done.
    X = np.array([[1.0], [2.0], [1e300]])
    params, weighted = one_weight_trainer(backend, X, np.array([0.0, 0.0, 1.0]))
    assert weighted.run(np.array([0, 1, 2, 0], dtype=np.intp), 0, 4) == (0.0, 0.0, 2)
    assert weighted.step == 0 and params[0] == 0.5


@pytest.mark.skipif(not BOTH_BACKENDS, reason="needs both backends")
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("opt_name", ["sgd", "momentum", "adam"])
def test_weighted_divergence_matches_across_backends(dtype, batch_size, opt_name):
    # exp outputs on growing inputs with a large rate: the loss overflows.
    # Both trainers stop at the same step and keep the same weights.
    X = np.linspace(1, 4, 40, dtype=dtype).reshape(10, 4) * 3
    Y = np.ones((10, 3), dtype=dtype)
    weights = np.array([1, 0, 0, 0, 2, 1, 0, 3, 1, 1], dtype=dtype)
    outcomes = {}
    for backend in ("cython", "numpy"):
        net = MLP([4, 5, 3], activation="identity", output_activation="exp", loss="poisson",
                  dtype=dtype, seed=1, backend=backend)
        optimizer = {"sgd": SGD(5.0), "momentum": SGD(5.0, momentum=0.9),
                     "adam": Adam(50.0)}[opt_name]
        weighted = net._kernels.Trainer(net._params, net._layout, net._loss_code, X, Y,
                                        batch_size, optimizer, net._optimizer_state, 0,
                                        weights)
        order, runs = np.arange(10, dtype=np.intp), []
        for _ in range(30):
            runs.append(weighted.run(order, 0, 4)[2])
            runs.append(weighted.run(order, 4, 10)[2])
        outcomes[backend] = (runs, weighted.step, net.params.copy(),
                             net._optimizer_state.copy())
    assert outcomes["cython"][:2] == outcomes["numpy"][:2]
    assert min(outcomes["numpy"][0]) < 4               # it did diverge
    assert np.isfinite(outcomes["numpy"][2]).all()
    close(outcomes["cython"][2], outcomes["numpy"][2], dtype)
    close(outcomes["cython"][3], outcomes["numpy"][3], dtype)


# ---------------------------------------------------------------- parity of the backends

@pytest.mark.skipif(not BOTH_BACKENDS, reason="needs both backends")
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 3, N_ROWS])
@pytest.mark.parametrize("head", list(HEADS))
def test_weighted_training_matches_across_backends(dtype, head, batch_size, opt_name,
                                                   make_data):
    X, Y = problem(make_data, dtype, HEADS[head][2])
    weights = random_weights(N_ROWS)
    trained = {}
    for backend in ("cython", "numpy"):
        net = network(backend, dtype, head)
        results = epochs(trainer(net, X, Y, batch_size, opt_name, weights), N_ROWS,
                         n_epochs=4)
        trained[backend] = net, results
    (net_c, results_c), (net_n, results_n) = trained["cython"], trained["numpy"]
    assert [done for _, _, done in results_c] == [done for _, _, done in results_n]
    close([loss for loss, _, _ in results_c], [loss for loss, _, _ in results_n], dtype)
    close([correct for _, correct, _ in results_c], [correct for _, correct, _ in results_n],
          dtype)
    close(net_c.params, net_n.params, dtype)
    close(net_c._optimizer_state, net_n._optimizer_state, dtype)
    weights = weights.astype(dtype)
    for name, value in (("loss_and_grad", lambda net: net.loss_and_grad(X, Y, weights)),
                        ("evaluate", lambda net: net._kernels.evaluate(
                            net._params, net._layout, net._loss_code, X, Y, 5, weights))):
        (compiled_a, compiled_b), (numpy_a, numpy_b) = value(net_c), value(net_n)
        close(compiled_a, numpy_a, dtype)
        close(compiled_b, numpy_b, dtype)


# ---------------------------------------------------------------- the checks

def test_the_kernels_refuse_weights_that_do_not_fit(backend, make_data):
    X, Y = make_data(6, 4, 3)
    net = network(backend, np.float64, "sigmoid-mse")
    kernels, grad = net._kernels, np.empty(net.n_params)
    for bad in (np.ones(5), np.ones(6, dtype=np.float32), np.ones((6, 1)), np.ones(12)[::2]):
        with pytest.raises(ValueError, match="sample_weight"):
            kernels.Trainer(net._params, net._layout, net._loss_code, X, Y, 2, SGD(0.1),
                            net._optimizer_state, 0, bad)
        with pytest.raises(ValueError, match="sample_weight"):
            kernels.evaluate(net._params, net._layout, net._loss_code, X, Y, 4, bad)
        with pytest.raises(ValueError, match="sample_weight"):
            kernels.loss_and_grad(net._params, net._layout, net._loss_code, X, Y, grad, bad)
    with pytest.raises(ValueError, match="sums to 0"):
        kernels.loss_and_grad(net._params, net._layout, net._loss_code, X, Y, grad,
                              np.zeros(6))
    weighted = kernels.Trainer(net._params, net._layout, net._loss_code, X, Y, 2, SGD(0.1),
                               net._optimizer_state, 0, np.ones(6))
    with pytest.raises(ValueError, match="sample_weight"):
        weighted.evaluate(X, Y, np.ones(5))
    assert weighted.sample_weight is not None
    assert weighted.run(np.arange(6, dtype=np.intp), 2, 2) == (0.0, 0.0, 0)
    assert weighted.evaluate(X[:0], Y[:0], np.ones(0)) == (0.0, 0.0)


def test_mlp_loss_and_grad_checks_the_weights(backend, make_data):
    X, Y = make_data(6, 4, 3)
    net = network(backend, np.float64, "sigmoid-mse")
    cases = [([1, 1, 1, 1, 1], r"sample_weight must be a 1-D array of shape \(6,\), one "
                                r"weight per sample; got shape \(5,\)"),
             ([1, 1, -1, 1, 1, 1], "sample_weight must be >= 0; got a negative weight at "
                                   "index 2"),
             ([1, 1, np.nan, 1, 1, 1], "sample_weight must contain only finite values"),
             ([0, 0, 0, 0, 0, 0], "sample_weight must have a positive sum; every weight is "
                                  "zero"),
             ([[1] * 6], r"sample_weight must be a 1-D array of shape \(6,\)")]
    for weights, message in cases:
        with pytest.raises(ValueError, match=message):
            net.loss_and_grad(X, Y, weights)
    with pytest.raises(TypeError, match="sample_weight"):
        net.loss_and_grad(X, Y, [True] * 6)
    # Lists, integers and other dtypes are converted; None is no weights.
    assert net.loss_and_grad(X, Y, [1] * 6)[0] == net.loss_and_grad(X, Y)[0]
    float32 = network(backend, np.float32, "sigmoid-mse")
    assert float32.loss_and_grad(X, Y, np.arange(6.0))[1].dtype == np.float32


def test_weighted_calls_leave_the_reference_count_of_the_weights_unchanged(backend, dtype,
                                                                          make_data):
    import gc
    import sys
    X, Y = problem(make_data, dtype, "onehot")
    weights = random_weights(N_ROWS).astype(dtype)

    def calls():
        net = network(backend, dtype, "softmax-cross_entropy")
        net.loss_and_grad(X, Y, weights)
        net._kernels.evaluate(net._params, net._layout, net._loss_code, X, Y, 5, weights)
        weighted = trainer(net, X, Y, 3, "adam", weights)
        weighted.run(np.arange(N_ROWS, dtype=np.intp), 0, N_ROWS)
        weighted.evaluate(X, Y, weights)

    calls()
    before = sys.getrefcount(weights)
    for _ in range(10):
        calls()
    gc.collect()
    assert sys.getrefcount(weights) == before
