"""Sparse (CSR) inputs in the compiled kernels: the same results as the dense path.

Every sparse entry point (``forward_csr``, ``evaluate_csr``,
``loss_and_grad_csr``, a ``Trainer`` built on or evaluating ``CSRRows``) is
compared with the same kernel's dense path on ``X.toarray()``. The sums run
in another order (over the stored entries only), so the results agree to
rounding, not to the bit.
"""

import time
import tracemalloc

import numpy as np
import pytest
import scipy.sparse
from _helpers import KERNEL_OPTIMIZERS as OPTIMIZERS

from cymlp import _codes
from cymlp._params import block_rows, build_layout
from cymlp._sparse import CSRRows, as_csr_rows
from cymlp.optim import SGD, Adam

K = pytest.importorskip("cymlp._kernels")

DTYPES = [np.float32, np.float64]
# (hidden activation, output activation, loss, kind of targets)
HEADS = {
    "softmax-cross_entropy": ("tanh", "softmax", "cross_entropy", "onehot"),
    "sigmoid-mse": ("sigmoid", "sigmoid", "mse", "regression"),
    "identity-mse": ("relu", "identity", "mse", "regression"),
    "relu-sigmoid-mse": ("relu", "sigmoid", "mse", "regression"),
    "exp-poisson": ("leaky_relu", "exp", "poisson", "count"),
}
N_FEATURES, N_HIDDEN, N_OUTPUTS = 30, 20, 3


def rtol(dtype):
    return 1e-4 if dtype == np.float32 else 1e-10


def close(actual, expected, dtype):
    """Equal to rtol, with an absolute slack relative to the largest value.

    In float32 that slack is the full rtol: after hundreds of steps, the
    rounding of a sum taken in another order has grown to about 1e-6 of the
    largest parameter (as much as a dense X with its columns permuted gives).
    """
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    tol = rtol(dtype)
    slack = 1.0 if dtype == np.float32 else 1e-2
    np.testing.assert_allclose(actual, expected, rtol=tol,
                               atol=tol * slack * max(1.0, np.abs(expected).max()))


def network(dtype, head="softmax-cross_entropy", n_features=N_FEATURES, seed=3, bias=True):
    """(params, layout, loss code) of an n_features-20-3 network."""
    hidden, output, loss, _ = HEADS[head]
    codes = [_codes.ACTIVATIONS[hidden], _codes.ACTIVATIONS[output]]
    layout, n_params = build_layout([n_features, N_HIDDEN, N_OUTPUTS], codes, bias)
    rng = np.random.default_rng(seed)
    params = (rng.normal(size=n_params) * 0.3).astype(dtype)
    return params, layout, int(_codes.LOSSES[loss])


def targets(n_rows, kind, dtype, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "onehot":
        Y = np.eye(N_OUTPUTS)[rng.integers(0, N_OUTPUTS, n_rows)]
    elif kind == "count":
        Y = rng.poisson(1.5, (n_rows, N_OUTPUTS)).astype(float)
    else:
        Y = rng.random((n_rows, N_OUTPUTS))
    return np.ascontiguousarray(Y, dtype=dtype)


def sparse_rows(n_rows, dtype, density=0.15, n_features=N_FEATURES, seed=0, empty_rows=True):
    """Random ``CSRRows`` (some rows empty) and the same rows dense."""
    rng = np.random.default_rng(seed)
    matrix = scipy.sparse.random(n_rows, n_features, density=density, format="csr",
                                 random_state=rng, data_rvs=rng.standard_normal)
    if empty_rows:
        matrix = matrix.tolil()
        for row in range(0, n_rows, 7):
            matrix.rows[row], matrix.data[row] = [], []
        matrix = matrix.tocsr()
    X = as_csr_rows(matrix, "X", dtype)
    return X, np.ascontiguousarray(X.toarray(), dtype=dtype)


def messy_rows(dtype):
    """CSR rows with unsorted and repeated columns (summed), and empty rows."""
    rows = [[(3, 1.0), (1, -2.0), (3, 0.5)], [], [(0, 1.5), (29, -1.0), (0, 2.0), (17, 0.25)],
            [], [(5, 1.0)], [(2, 0.5), (2, 0.5), (2, -0.25), (28, 3.0), (7, -1.0)]]
    indptr = np.zeros(len(rows) + 1, dtype=np.intp)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.array([j for r in rows for j, _ in r], dtype=np.intp)
    data = np.array([v for r in rows for _, v in r], dtype=dtype)
    X = CSRRows(data, indices, indptr, (len(rows), N_FEATURES))
    dense = np.zeros((len(rows), N_FEATURES), dtype=dtype)
    for i, r in enumerate(rows):
        for j, v in r:
            dense[i, j] += v
    assert not np.all(np.diff(indices[indptr[0]:indptr[1]]) > 0)
    return X, dense


def trainer(params, layout, loss, X, Y, batch_size, opt_name, sample_weight=None):
    state = np.zeros((2, params.shape[0]), dtype=params.dtype)
    return K.Trainer(params, layout, loss, X, Y, batch_size, OPTIMIZERS[opt_name](), state, 0,
                     sample_weight), state


def epochs(t, n_rows, n_epochs=2, seed=5):
    """Shuffled epochs, each in two runs: the results of every run."""
    rng = np.random.default_rng(seed)
    cut = n_rows // 3
    results = []
    for _ in range(n_epochs):
        order = rng.permutation(n_rows).astype(np.intp)
        results.append(t.run(order, 0, cut))
        results.append(t.run(order, cut, n_rows))
    return results


def assert_same_results(sparse_results, dense_results, dtype):
    for (loss, correct, done), (dense_loss, dense_correct, dense_done) in zip(
            sparse_results, dense_results):
        assert done == dense_done
        close(loss, dense_loss, dtype)
        # A row at the argmax tie could flip in float32; none do here.
        assert correct == pytest.approx(dense_correct, rel=rtol(dtype), abs=1e-6)


# ---------------------------------------------------------------- forward, evaluate, loss_and_grad

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block", [1, 4, 1000])
def test_forward_csr_matches_dense(dtype, block):
    X, dense = sparse_rows(50, dtype)
    params, layout, _ = network(dtype)
    out, expected = (np.empty((50, N_OUTPUTS), dtype=dtype) for _ in range(2))
    K.forward_csr(params, layout, X.data, X.indices, X.indptr, out, block)
    K.forward(params, layout, dense, expected, block)
    close(out, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_duplicate_and_unsorted_columns_are_summed(dtype):
    X, dense = messy_rows(dtype)
    params, layout, loss = network(dtype)
    out, expected = (np.empty((X.shape[0], N_OUTPUTS), dtype=dtype) for _ in range(2))
    K.forward_csr(params, layout, X.data, X.indices, X.indptr, out, 4)
    K.forward(params, layout, dense, expected, 4)
    close(out, expected, dtype)
    Y = targets(X.shape[0], "onehot", dtype)
    grad, dense_grad = np.empty_like(params), np.empty_like(params)
    close(K.loss_and_grad_csr(params, layout, loss, X.data, X.indices, X.indptr, Y, grad),
          K.loss_and_grad(params, layout, loss, dense, Y, dense_grad), dtype)
    close(grad, dense_grad, dtype)
    for batch_size in (1, 4):
        for opt_name in ("sgd", "adam"):
            p_sparse, p_dense = params.copy(), params.copy()
            ts, _ = trainer(p_sparse, layout, loss, X, Y, batch_size, opt_name)
            td, _ = trainer(p_dense, layout, loss, dense, Y, batch_size, opt_name)
            assert_same_results(epochs(ts, X.shape[0]), epochs(td, X.shape[0]), dtype)
            close(p_sparse, p_dense, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_without_entries(dtype):
    params, layout, loss = network(dtype)
    X = CSRRows(np.zeros(0, dtype), np.zeros(0, np.intp), np.zeros(6, np.intp), (5, N_FEATURES))
    out = np.empty((5, N_OUTPUTS), dtype=dtype)
    K.forward_csr(params, layout, X.data, X.indices, X.indptr, out, 2)
    expected = np.empty_like(out)
    K.forward(params, layout, np.zeros((5, N_FEATURES), dtype), expected, 2)
    close(out, expected, dtype)
    assert np.all(out == out[0])
    Y = targets(5, "onehot", dtype)
    grad = np.full_like(params, np.nan)
    K.loss_and_grad_csr(params, layout, loss, X.data, X.indices, X.indptr, Y, grad)
    n_w0 = N_FEATURES * N_HIDDEN
    assert np.all(grad[:n_w0] == 0)     # no input, no first-layer weight gradient
    p = params.copy()
    t, _ = trainer(p, layout, loss, X, Y, 2, "momentum")
    assert t.run(np.arange(5, dtype=np.intp), 0, 5)[2] == 5
    np.testing.assert_array_equal(p[:n_w0], params[:n_w0])
    # No rows at all.
    none = np.zeros(1, np.intp)
    assert K.evaluate_csr(params, layout, loss, X.data, X.indices, none,
                          np.empty((0, N_OUTPUTS), dtype), 4) == (0.0, 0)
    K.forward_csr(params, layout, X.data, X.indices, none, np.empty((0, N_OUTPUTS), dtype), 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("weighted", [False, True])
def test_evaluate_csr_matches_dense(dtype, head, weighted):
    X, dense = sparse_rows(40, dtype)
    params, layout, loss = network(dtype, head)
    Y = targets(40, HEADS[head][3], dtype)
    weights = None
    if weighted:
        weights = np.random.default_rng(2).uniform(0, 3, 40).astype(dtype)
        weights[::5] = 0
    for block in (1, 7, 40):
        loss_sum, correct = K.evaluate_csr(params, layout, loss, X.data, X.indices, X.indptr,
                                           Y, block, weights)
        expected = K.evaluate(params, layout, loss, dense, Y, block, weights)
        close(loss_sum, expected[0], dtype)
        assert type(correct) is type(expected[1])
        assert correct == pytest.approx(expected[1], rel=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_loss_and_grad_csr_matches_dense(dtype, head, weighted, bias):
    params, layout, loss = network(dtype, head, bias=bias)
    sparse_block = block_rows(layout, 10 ** 9, sparse=True)
    assert sparse_block > block_rows(layout, 10 ** 9)
    n_rows = 3 * sparse_block + 17      # several blocks in both paths
    X, dense = sparse_rows(n_rows, dtype, density=0.05)
    Y = targets(n_rows, HEADS[head][3], dtype)
    weights = None
    if weighted:
        weights = np.random.default_rng(2).uniform(0, 3, n_rows).astype(dtype)
        weights[:sparse_block] = 0      # a whole block of weight 0
    grad, dense_grad = np.full_like(params, np.nan), np.full_like(params, np.nan)
    mean = K.loss_and_grad_csr(params, layout, loss, X.data, X.indices, X.indptr, Y, grad,
                               weights)
    close(mean, K.loss_and_grad(params, layout, loss, dense, Y, dense_grad, weights), dtype)
    close(grad, dense_grad, dtype)
    # One block.
    small = X.take(np.arange(30))
    mean = K.loss_and_grad_csr(params, layout, loss, small.data, small.indices, small.indptr,
                               Y[:30], grad, None if weights is None else weights[-30:])
    expected = K.loss_and_grad(params, layout, loss, dense[:30], Y[:30], dense_grad,
                               None if weights is None else weights[-30:])
    close(mean, expected, dtype)
    close(grad, dense_grad, dtype)


def test_block_rows_sparse_leaves_out_the_input():
    _, layout, _ = network(np.float64, n_features=100000)
    assert block_rows(layout, 10 ** 6) == (1 << 19) // (100000 + 23 + 60)
    assert block_rows(layout, 10 ** 6, sparse=True) == (1 << 19) // (23 + 60)
    assert block_rows(layout, 5, sparse=True) == 5


# ---------------------------------------------------------------- malformed structure

def malformed(dtype):
    """(name, data, indices, indptr) of broken CSR rows of 4 rows."""
    good_indptr = np.array([0, 2, 2, 3, 5], np.intp)
    indices = np.array([0, 4, 1, 29, 3], np.intp)
    data = np.ones(5, dtype)
    return [
        ("indptr not from 0", data, indices, np.array([1, 2, 2, 3, 5], np.intp)),
        ("indptr decreasing", data, indices, np.array([0, 3, 2, 3, 5], np.intp)),
        ("indptr past the end", data, indices, np.array([0, 2, 2, 3, 6], np.intp)),
        ("indptr short of the end", data, indices, np.array([0, 2, 2, 3, 4], np.intp)),
        ("data too short", data[:4], indices, good_indptr),
        ("negative column", data, np.array([0, -1, 1, 29, 3], np.intp), good_indptr),
        ("column too large", data, np.array([0, 4, 1, 30, 3], np.intp), good_indptr),
        ("indptr empty", data, indices, np.zeros(0, np.intp)),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_malformed_structure_raises(dtype):
    params, layout, loss = network(dtype)
    Y = targets(4, "onehot", dtype)
    out, grad = np.empty((4, N_OUTPUTS), dtype), np.empty_like(params)
    for name, data, indices, indptr in malformed(dtype):
        with pytest.raises(ValueError):
            K.forward_csr(params, layout, data, indices, indptr, out, 2)
        with pytest.raises(ValueError):
            K.evaluate_csr(params, layout, loss, data, indices, indptr, Y, 2)
        with pytest.raises(ValueError):
            K.loss_and_grad_csr(params, layout, loss, data, indices, indptr, Y, grad)
        X = CSRRows(data, indices, indptr, (4, N_FEATURES))
        with pytest.raises(ValueError):
            trainer(params.copy(), layout, loss, X, Y, 2, "sgd")
    # The right structure, the wrong number of rows or columns or dtypes.
    _, data, indices, _ = malformed(dtype)[0]
    indptr = np.array([0, 2, 2, 3, 5], np.intp)
    with pytest.raises(ValueError, match="row"):
        K.forward_csr(params, layout, data, indices, indptr, out[:3], 2)
    with pytest.raises(ValueError, match="rows"):
        K.evaluate_csr(params, layout, loss, data, indices, indptr, Y[:3], 2)
    with pytest.raises(ValueError):
        K.loss_and_grad_csr(params, layout, loss, data, indices, indptr, Y[:3], grad)
    with pytest.raises(ValueError):
        trainer(params.copy(), layout, loss, CSRRows(data, indices, indptr, (4, 31)), Y, 2,
                "sgd")
    with pytest.raises(ValueError):
        trainer(params.copy(), layout, loss, CSRRows(data.astype(np.float16), indices, indptr,
                                                     (4, N_FEATURES)), Y, 2, "sgd")
    with pytest.raises(ValueError):
        trainer(params.copy(), layout, loss, CSRRows(data, indices.astype(np.int32), indptr,
                                                     (4, N_FEATURES)), Y, 2, "sgd")
    t, _ = trainer(params.copy(), layout, loss, CSRRows(data, indices, indptr, (4, N_FEATURES)),
                   Y, 2, "sgd")
    bad = CSRRows(data, np.array([0, 4, 1, 30, 3], np.intp), indptr, (4, N_FEATURES))
    with pytest.raises(ValueError, match="column index 30"):
        t.evaluate(bad, Y)


# ---------------------------------------------------------------- Trainer

N_TRAIN = 700


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head", ["softmax-cross_entropy", "sigmoid-mse"])
@pytest.mark.parametrize("batch_size", [1, 3, 64, 300])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_trainer_on_csr_matches_dense(dtype, head, batch_size, opt_name):
    X, dense = sparse_rows(N_TRAIN, dtype)
    params, layout, loss = network(dtype, head)
    Y = targets(N_TRAIN, HEADS[head][3], dtype)
    if batch_size >= 64:
        assert K.uses_blas(layout, batch_size)  # the dense path multiplies with BLAS
    p_sparse, p_dense = params.copy(), params.copy()
    ts, state_sparse = trainer(p_sparse, layout, loss, X, Y, batch_size, opt_name)
    td, state_dense = trainer(p_dense, layout, loss, dense, Y, batch_size, opt_name)
    assert_same_results(epochs(ts, N_TRAIN), epochs(td, N_TRAIN), dtype)
    assert ts.step == td.step
    close(p_sparse, p_dense, dtype)
    close(state_sparse, state_dense, dtype)
    # Evaluation takes either kind of X, whatever the trainer was built on.
    expected = td.evaluate(dense, Y)
    for t in (ts, td):
        for inputs in (X, dense):
            loss_sum, correct = t.evaluate(inputs, Y)
            close(loss_sum, expected[0], dtype)
            assert abs(correct - expected[1]) <= (1 if dtype == np.float32 else 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [1, 3, 64])
@pytest.mark.parametrize("opt_name", ["sgd", "momentum", "nesterov", "adam"])
def test_trainer_on_csr_with_sample_weights(dtype, batch_size, opt_name):
    X, dense = sparse_rows(N_TRAIN, dtype)
    params, layout, loss = network(dtype)
    Y = targets(N_TRAIN, "onehot", dtype)
    weights = np.random.default_rng(4).uniform(0.1, 3.0, N_TRAIN).astype(dtype)
    weights[np.random.default_rng(5).choice(N_TRAIN, N_TRAIN // 4, replace=False)] = 0
    weights[:6] = 0     # a batch of weight 0 in the first run, whatever its size (in order)
    p_sparse, p_dense = params.copy(), params.copy()
    ts, _ = trainer(p_sparse, layout, loss, X, Y, batch_size, opt_name, weights)
    td, _ = trainer(p_dense, layout, loss, dense, Y, batch_size, opt_name, weights)
    order = np.arange(N_TRAIN, dtype=np.intp)
    assert_same_results([ts.run(order, 0, N_TRAIN)], [td.run(order, 0, N_TRAIN)], dtype)
    assert_same_results(epochs(ts, N_TRAIN), epochs(td, N_TRAIN), dtype)
    assert ts.step == td.step
    close(p_sparse, p_dense, dtype)
    loss_sum, correct = ts.evaluate(X, Y, weights)
    expected = td.evaluate(dense, Y, weights)
    close(loss_sum, expected[0], dtype)
    assert correct == pytest.approx(expected[1], rel=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [1, 4, 64])
@pytest.mark.parametrize("opt_name, rate", [("sgd", 3.0), ("sgd", 50.0), ("momentum", 3.0),
                                            ("momentum", 50.0), ("adam", 3.0), ("adam", 1e3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_divergence_on_csr_matches_dense(dtype, batch_size, opt_name, rate, weighted):
    # A huge rate: the Poisson outputs overflow after a few steps (in the
    # first run, or later, or in a step the next run has to undo); the rows
    # kept, the steps undone and the parameters left are the same.
    X, dense = sparse_rows(200, dtype, density=0.3)
    params, layout, loss = network(dtype, "exp-poisson")
    Y = targets(200, "count", dtype)
    weights = None
    if weighted:
        weights = np.random.default_rng(3).uniform(0.5, 2.0, 200).astype(dtype)
        weights[::3] = 0
    results = {}
    for name, inputs in (("sparse", X), ("dense", dense)):
        p = params.copy()
        state = np.zeros((2, p.shape[0]), dtype)
        optimizer = (SGD(rate) if opt_name == "sgd" else
                     SGD(rate, momentum=0.9) if opt_name == "momentum" else Adam(rate))
        t = K.Trainer(p, layout, loss, inputs, Y, batch_size, optimizer, state, 0, weights)
        order = np.random.default_rng(1).permutation(200).astype(np.intp)
        runs = [t.run(order, 0, 50), t.run(order, 50, 200), t.run(order, 0, 200)]
        results[name] = (runs, p, state, t.step)
    runs, p, state, step = results["sparse"]
    dense_runs, dense_p, dense_state, dense_step = results["dense"]
    assert [r[2] for r in runs] == [r[2] for r in dense_runs]
    for (loss_sum, correct, _), (dense_loss, dense_correct, _) in zip(runs, dense_runs):
        close(loss_sum, dense_loss, dtype)
        assert correct == pytest.approx(dense_correct, rel=rtol(dtype))
    print(f"\nrows done: {[r[2] for r in runs]}")
    assert [r[2] for r in dense_runs] != [50, 150, 200]     # it did diverge
    assert step == dense_step
    assert np.all(np.isfinite(p))
    close(p, dense_p, dtype)
    close(state, dense_state, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_trainer_workspace_has_no_input_slot(dtype):
    # 5000 inputs, batches of 100: a dense input slot would be 500000 elements.
    params, layout, loss = network(dtype, n_features=5000)
    X, _ = sparse_rows(300, dtype, density=0.002, n_features=5000)
    Y = targets(300, "onehot", dtype)
    state = np.zeros((2, params.shape[0]), dtype)
    tracemalloc.start()
    try:
        t = K.Trainer(params, layout, loss, X, Y, 100, SGD(0.1), state, 0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # grad, two snapshots of params and state, and 100 rows of 3 * 20 + 4 * 3 elements.
    itemsize = np.dtype(dtype).itemsize
    assert peak < (7 * params.shape[0] + 100 * 200) * itemsize + 100000
    assert t.run(np.arange(300, dtype=np.intp), 0, 300)[2] == 300


# ---------------------------------------------------------------- memory

def test_big_sparse_data_trains_in_little_memory():
    # 100000 x 100000 at density 1e-4 (1e6 stored entries), 100000-16-2.
    n, n_hidden, n_out, batch = 100000, 16, 2, 200
    rng = np.random.default_rng(0)
    matrix = scipy.sparse.random(n, n, density=1e-4, format="csr", random_state=rng,
                                 dtype=np.float64)
    X = as_csr_rows(matrix, "X", np.float64)
    del matrix
    Y = np.eye(n_out)[rng.integers(0, n_out, n)]
    codes = [_codes.Activation.RELU, _codes.Activation.SOFTMAX]
    layout, n_params = build_layout([n, n_hidden, n_out], codes, True)
    params = rng.normal(scale=0.01, size=n_params)
    state = np.zeros((2, n_params))
    order = rng.permutation(n).astype(np.intp)
    started = time.perf_counter()
    tracemalloc.start()
    try:
        t = K.Trainer(params, layout, int(_codes.Loss.CROSS_ENTROPY), X, Y, batch,
                      SGD(0.1, momentum=0.9), state, 0)
        loss_sum, _, done = t.run(order, 0, n)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    print(f"\nbig sparse epoch: peak traced {peak / 1e6:.1f} MB "
          f"(params {params.nbytes / 1e6:.1f} MB), {elapsed:.2f} s")
    assert done == n and np.isfinite(loss_sum)
    assert peak < 300e6


def permuted_twin(params, X, perm):
    """params and dense X with the input features permuted (the same network)."""
    n_w0 = N_FEATURES * N_HIDDEN
    twin = params.copy()
    twin[:n_w0] = params[:n_w0].reshape(N_FEATURES, N_HIDDEN)[perm].ravel()
    return twin, np.ascontiguousarray(X[:, perm])


def test_chaotic_training_differs_no_more_than_the_dense_path_itself():
    # Adam with weight decay on a relu network, batches of 3: the steps are
    # chaotic (weights that weight decay holds near 0 flip sign), so any
    # change of summation order grows to a visible difference in two epochs.
    # The sparse path differs from the dense one by no more than the dense
    # path differs from itself on the same data with its columns permuted.
    dtype, head, opt_name = np.float64, "relu-sigmoid-mse", "adam-weight_decay"
    X, dense = sparse_rows(N_TRAIN, dtype)
    params, layout, loss = network(dtype, head)
    Y = targets(N_TRAIN, HEADS[head][3], dtype)
    perm = np.random.default_rng(9).permutation(N_FEATURES)
    twin, dense_twin = permuted_twin(params, dense, perm)
    p_sparse, p_dense = params.copy(), params.copy()
    for p, inputs in ((p_sparse, X), (p_dense, dense), (twin, dense_twin)):
        epochs(trainer(p, layout, loss, inputs, Y, 3, opt_name)[0], N_TRAIN)
    n_w0 = N_FEATURES * N_HIDDEN
    twin[:n_w0] = twin[:n_w0].reshape(N_FEATURES, N_HIDDEN)[np.argsort(perm)].ravel()
    sparse_gap, dense_gap = np.abs(p_sparse - p_dense).max(), np.abs(twin - p_dense).max()
    print(f"\nchaotic: sparse vs dense {sparse_gap:.2e}, permuted dense vs dense {dense_gap:.2e}")
    assert dense_gap > 1e-6     # chaotic indeed
    assert sparse_gap < 5 * dense_gap
