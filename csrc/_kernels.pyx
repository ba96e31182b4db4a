"""Compiled training and inference kernels of cymlp.

Every name here has a twin of the same name and signature in
``cymlp/_numpy_kernels.py``, which is the readable reference; read that first.
The Python layer (``cymlp/_network.py``, ``cymlp/_training.py``) validates
every argument before it calls in here: these kernels run without bounds
checks and trust their inputs, apart from a few O(1) checks at each entry
point that keep a mistake in the Python layer from writing outside a buffer.

* ``params``: one flat buffer; layer ``l`` has its weights ``W`` of shape
  ``(n_in, n_out)`` (row-major) at ``layout[l, W_OFFSET]`` and, when the
  network has biases, ``b`` of length ``n_out`` at ``layout[l, B_OFFSET]``
  (``-1`` means no bias). ``cymlp/_params.py`` builds the layout.
* ``layout``: ``intp`` array of shape ``(n_layers, 5)``, columns
  ``n_in, n_out, activation code, weight offset, bias offset``.
* The codes (activations, losses, optimizers) are ``cymlp/_codes.py``'s;
  the ``cpdef enum``s below repeat them and a test checks that they agree.
* A ``Trainer`` owns its workspace: for ``batch_size`` rows, the gathered
  input, the activations of every layer, the output pre-activations and two
  delta buffers (``activation_offset`` says where each starts).
* A sparse ``X`` (``cymlp._sparse.CSRRows``, or the ``*_csr`` entry points)
  is read in place: the workspace has no input slot then, the first layer's
  product sums ``v W[j]`` over each row's stored entries ``(j, v)`` and its
  weight gradient is scattered back into those rows of ``W``.
"""
# Cython directives are set in CMakeLists.txt (CYTHON_ARGS).

from cython cimport floating
from libc.math cimport exp, expf, log, log1p, sqrt, fabs, tanh, tanhf, isfinite
from libc.string cimport memcpy, memset
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer

__all__ = ["Trainer", "evaluate", "evaluate_csr", "forward", "forward_csr", "loss_and_grad",
           "loss_and_grad_csr", "uses_blas"]

# Layout columns (cymlp/_params.py).
cdef enum:
    N_IN = 0
    N_OUT = 1
    ACTIVATION = 2
    W_OFFSET = 3
    B_OFFSET = 4
    LAYOUT_COLUMNS = 5

# The codes of cymlp/_codes.py (tests/test_backends.py checks that they agree).
cpdef enum Activation:
    IDENTITY = 0
    SIGMOID = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4
    SOFTMAX = 5
    EXP = 6         # output layers only (the Poisson loss)

cpdef enum Loss:
    MSE = 0
    BCE = 1
    CROSS_ENTROPY = 2
    TUTORIAL = 3    # reports MSE, descends along a - y (see cymlp.tutorial)
    POISSON = 4     # exp(z) - y z on exp outputs (torch.nn.PoissonNLLLoss)

cpdef enum Optimizer:
    SGD = 0
    ADAM = 1

cdef enum:
    # Indices into a Trainer's ``hyperparams``.
    LEARNING_RATE = 0
    MOMENTUM = 1
    NESTEROV = 2
    WEIGHT_DECAY = 3
    BETA1 = 4
    BETA2 = 5
    EPSILON = 6
    N_HYPERPARAMS = 7

LEAKY_SLOPE = 0.01  # cymlp/_codes.py
cdef double C_LEAKY_SLOPE = LEAKY_SLOPE

cdef extern from *:
    """
    #ifndef CYMLP_CHECKED_BUILD
    #define CYMLP_CHECKED_BUILD 0
    #endif
    """
    int CYMLP_CHECKED_BUILD

# True in the debug build (bounds, wraparound and initialisation checks on).
_CHECKED_BUILD = bool(CYMLP_CHECKED_BUILD)

# Below this many multiply-adds a plain loop beats the call overhead of BLAS.
# Measured (one thread, float64, an n-n-n relu network, ns per sample of an
# epoch; loops = every product in small_gemm, BLAS = every product in dgemm):
#   batch 1: n=8 (64 MACs) loops 265 / BLAS 504; n=16 (256) 523 / 522;
#            n=24 (576) 965 / 772; n=64 (4096) 4885 / 3216
#   batch 8: n=8 (512) 346 / 128; n=16 (2048) 880 / 232
# so the crossover sits at about 256 multiply-adds per product.
cdef long long SMALL_GEMM = 256


# ---------------------------------------------------------------- matrix products

cdef extern from "loops.h" nogil:
    # a = 1 / (1 + exp(-a)) in place, with an exp of its own that vectorises.
    void sigmoid_float(Py_ssize_t n, float* a)
    void sigmoid_double(Py_ssize_t n, double* a)
    # Batches of one row: x W, and the backward products in one pass over W.
    void row_times_matrix_float(Py_ssize_t n_in, Py_ssize_t n_out, const float* x,
                                const float* w, float* z)
    void row_times_matrix_double(Py_ssize_t n_in, Py_ssize_t n_out, const double* x,
                                 const double* w, double* z)
    void row_backward_float(Py_ssize_t n_in, Py_ssize_t n_out, float alpha,
                            const float* a_prev, const float* delta, float* w, float* grad,
                            float* delta_prev)
    void row_backward_double(Py_ssize_t n_in, Py_ssize_t n_out, double alpha,
                             const double* a_prev, const double* delta, double* w,
                             double* grad, double* delta_prev)
    void first_layer_step_float(Py_ssize_t n_in, Py_ssize_t n_out, float alpha, const float* x,
                                const float* delta, float* w, const float* x_next,
                                float* z_next)
    void first_layer_step_double(Py_ssize_t n_in, Py_ssize_t n_out, double alpha,
                                 const double* x, const double* delta, double* w,
                                 const double* x_next, double* z_next)


cdef inline void row_times_matrix(Py_ssize_t n_in, Py_ssize_t n_out, const floating* x,
                                  const floating* w, floating* z) noexcept nogil:
    """z = x W for one row x (loops.h)."""
    if floating is float:
        row_times_matrix_float(n_in, n_out, x, w, z)
    else:
        row_times_matrix_double(n_in, n_out, x, w, z)


cdef inline void row_backward(Py_ssize_t n_in, Py_ssize_t n_out, floating alpha,
                              const floating* a_prev, const floating* delta, floating* w,
                              floating* grad, floating* delta_prev) noexcept nogil:
    """delta_prev = W delta, then W += alpha a_prev^T delta or grad = a_prev^T delta."""
    if floating is float:
        row_backward_float(n_in, n_out, alpha, a_prev, delta, w, grad, delta_prev)
    else:
        row_backward_double(n_in, n_out, alpha, a_prev, delta, w, grad, delta_prev)


cdef inline void first_layer_step(Py_ssize_t n_in, Py_ssize_t n_out, floating alpha,
                                  const floating* x, const floating* delta, floating* w,
                                  const floating* x_next, floating* z_next) noexcept nogil:
    """W += alpha x^T delta, and z_next = x_next W after that step, in one pass."""
    if floating is float:
        first_layer_step_float(n_in, n_out, alpha, x, delta, w, x_next, z_next)
    else:
        first_layer_step_double(n_in, n_out, alpha, x, delta, w, x_next, z_next)

cdef inline void axpy(Py_ssize_t n, floating alpha, const floating* x,
                      floating* y) noexcept nogil:
    """y += alpha x (contiguous; the compiler vectorises it)."""
    cdef Py_ssize_t j
    for j in range(n):
        y[j] += alpha * x[j]


cdef inline floating dot(Py_ssize_t n, const floating* x, const floating* y) noexcept nogil:
    """x . y with four partial sums, so the adds do not wait on each other."""
    cdef Py_ssize_t j
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0
    for j in range(0, n - 3, 4):
        s0 += x[j] * y[j]
        s1 += x[j + 1] * y[j + 1]
        s2 += x[j + 2] * y[j + 2]
        s3 += x[j + 3] * y[j + 3]
    for j in range(n - n % 4, n):
        s0 += x[j] * y[j]
    return (s0 + s1) + (s2 + s3)


cdef bint all_finite(Py_ssize_t n, const floating* x) noexcept nogil:
    """Whether no x is inf or NaN (x - x is 0 for finite x, NaN otherwise)."""
    cdef Py_ssize_t j
    cdef bint bad = False
    for j in range(n):
        bad |= (x[j] - x[j]) != 0
    return not bad


cdef void small_gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                     const floating* a, int lda, const floating* b, int ldb, floating beta,
                     floating* c, int ldc) noexcept nogil:
    """Row-major C(m x n) = alpha op(A) op(B) + beta C with plain loops.

    Rows of C are built from contiguous rows of B (axpy) or, for op(B) = B^T,
    as dot products of contiguous rows; only op(A) is read with a stride.
    """
    cdef Py_ssize_t i, j, p
    cdef floating* c_row
    cdef floating total
    for i in range(m):
        c_row = c + i * ldc
        if trans_b:
            for j in range(n):
                if trans_a:  # not used by the network; kept correct anyway
                    total = 0
                    for p in range(k):
                        total += a[p * lda + i] * b[j * ldb + p]
                else:
                    total = dot(k, a + i * lda, b + j * ldb)
                c_row[j] = alpha * total + (beta * c_row[j] if beta != 0 else 0)
            continue
        if beta == 0:
            for j in range(n):
                c_row[j] = 0
        elif beta != 1:
            for j in range(n):
                c_row[j] *= beta
        for p in range(k):
            axpy(n, alpha * (a[p * lda + i] if trans_a else a[i * lda + p]), b + p * ldb, c_row)


# SciPy's BLAS, loaded on first need: importing scipy.linalg costs about 0.3 s,
# and networks whose products are all small (or trained one sample at a time)
# never call BLAS. ``uses_blas`` loads it before any product that needs it;
# until then ``gemm`` computes everything with the loops above.
ctypedef void (*sgemm_t)(char* transa, char* transb, int* m, int* n, int* k, float* alpha,
                         float* a, int* lda, float* b, int* ldb, float* beta, float* c,
                         int* ldc) noexcept nogil
ctypedef void (*dgemm_t)(char* transa, char* transb, int* m, int* n, int* k, double* alpha,
                         double* a, int* lda, double* b, int* ldb, double* beta, double* c,
                         int* ldc) noexcept nogil
cdef sgemm_t blas_sgemm = NULL
cdef dgemm_t blas_dgemm = NULL


cdef int load_blas() except -1:
    """Fetch sgemm and dgemm from scipy.linalg.cython_blas (what a cimport does)."""
    global blas_sgemm, blas_dgemm
    if blas_dgemm != NULL:
        return 0
    from scipy.linalg import cython_blas
    functions = cython_blas.__pyx_capi__
    for name in ("sgemm", "dgemm"):
        # A capsule is named by its C signature; the Fortran interface takes
        # every integer (m, n, k and the three leading dimensions) as int*.
        signature = PyCapsule_GetName(functions[name])
        if not (signature.startswith(b"void (char *, char *, int *, int *, int *, ")
                and signature.count(b"int *") == 6):
            raise ImportError(f"scipy.linalg.cython_blas.{name} has the signature "
                              f"{signature.decode()!r}; cymlp needs int arguments")
    blas_sgemm = <sgemm_t>PyCapsule_GetPointer(functions["sgemm"],
                                               PyCapsule_GetName(functions["sgemm"]))
    blas_dgemm = <dgemm_t>PyCapsule_GetPointer(functions["dgemm"],
                                               PyCapsule_GetName(functions["dgemm"]))
    return 0


cdef inline bint small_product(long long m, long long n, long long k) noexcept nogil:
    """Whether the loops compute C(m x n) = A(m x k) B(k x n) rather than BLAS.

    One row (``m == 1``) or one column of A and row of B (``k == 1``) are a
    matrix-vector product or a rank-1 update: the loops stream the matrix once,
    where BLAS would first pack it.
    """
    return m * n * k < SMALL_GEMM or m == 1 or k == 1


def uses_blas(const Py_ssize_t[:, ::1] layout, Py_ssize_t rows):
    """Whether products of ``rows`` rows through ``layout`` call BLAS; loads it if so.

    The entry points below call it before their first product; the Python
    layer calls it before it sets the BLAS thread count.
    """
    return ensure_blas(layout, rows)


cdef bint ensure_blas(const Py_ssize_t[:, ::1] layout, Py_ssize_t rows) except -1:
    """``uses_blas``."""
    cdef Py_ssize_t l, n_in, n_out
    cdef bint needed = False
    for l in range(layout.shape[0]):
        n_in = layout[l, N_IN]
        n_out = layout[l, N_OUT]
        # Forward X W, backward delta W^T, and the gradient a^T delta.
        needed |= (not small_product(rows, n_out, n_in) or not small_product(rows, n_in, n_out)
                   or not small_product(n_in, n_out, rows))
    if needed:
        load_blas()
    return needed


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
               const floating* a, int lda, const floating* b, int ldb, floating beta,
               floating* c, int ldc) noexcept nogil:
    """Row-major C(m x n) = alpha op(A) op(B) + beta C; BLAS for all but small products."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if small_product(m, n, k) or blas_dgemm == NULL:
        small_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    # BLAS is column-major: a row-major C is a column-major C^T = op(B)^T op(A)^T.
    if floating is float:
        blas_sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda,
                   &beta, c, &ldc)
    else:
        blas_dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda,
                   &beta, c, &ldc)


# ---------------------------------------------------------------- activations

cdef inline floating exp_(floating x) noexcept nogil:
    """exp in the precision of x (expf for float32, as NumPy does)."""
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating row_max(const floating* row, Py_ssize_t width) noexcept nogil:
    """The largest of ``width`` values (softmax and log-sum-exp subtract it)."""
    cdef Py_ssize_t j
    cdef floating top = row[0]
    for j in range(1, width):
        if row[j] > top:
            top = row[j]
    return top


cdef void activate(int code, floating* a, const floating* bias, floating* z_out,
                   Py_ssize_t rows, Py_ssize_t width) noexcept nogil:
    """a = f(a + bias) in place, row by row, in one pass over a.

    ``bias`` may be NULL (no bias); with ``z_out``, the pre-activations
    ``a + bias`` are also stored there. The loops are branch-free where the
    activation allows it, so the compiler can vectorise them.
    """
    cdef Py_ssize_t r, j
    cdef floating* row
    cdef floating v, top, total
    cdef floating slope = <floating>C_LEAKY_SLOPE
    for r in range(rows):
        row = a + r * width
        if bias != NULL:
            for j in range(width):
                row[j] += bias[j]
        if z_out != NULL:
            memcpy(z_out + r * width, row, width * sizeof(floating))
        if code == SIGMOID:
            if floating is float:
                sigmoid_float(width, row)
            else:
                sigmoid_double(width, row)
        elif code == TANH:
            for j in range(width):
                row[j] = tanhf(row[j]) if floating is float else tanh(row[j])
        elif code == RELU:
            for j in range(width):
                v = row[j]
                row[j] = v if v > 0 else 0
        elif code == LEAKY_RELU:
            for j in range(width):
                v = row[j]
                row[j] = v if v > 0 else slope * v
        elif code == SOFTMAX:
            top = row_max(row, width)
            total = 0
            for j in range(width):
                row[j] = exp_(row[j] - top)
                total += row[j]
            for j in range(width):
                row[j] /= total
        elif code == EXP:
            for j in range(width):
                row[j] = exp_(row[j])


cdef void multiply_derivative(int code, floating* delta, const floating* a,
                              Py_ssize_t n) noexcept nogil:
    """delta *= f'(z), with f' written in terms of the output a = f(z)."""
    cdef Py_ssize_t i
    cdef floating slope = <floating>C_LEAKY_SLOPE
    if code == SIGMOID:
        for i in range(n):
            delta[i] *= a[i] * (1 - a[i])
    elif code == TANH:
        for i in range(n):
            delta[i] *= 1 - a[i] * a[i]
    elif code == RELU:
        for i in range(n):
            delta[i] = delta[i] if a[i] > 0 else 0
    elif code == LEAKY_RELU:
        for i in range(n):
            delta[i] = delta[i] if a[i] > 0 else slope * delta[i]


# ---------------------------------------------------------------- losses

cdef bint row_correct(const floating* a, const floating* y, Py_ssize_t width) noexcept nogil:
    """Argmax of a equals argmax of y (threshold 0.5 for one output)."""
    cdef Py_ssize_t j, best_a = 0, best_y = 0
    if width == 1:
        return (a[0] > 0.5) == (y[0] > 0.5)
    for j in range(1, width):
        if a[j] > a[best_a]:
            best_a = j
        if y[j] > y[best_y]:
            best_y = j
    return best_a == best_y


cdef double output_delta(int loss_code, int activation, const floating* a,
                         const floating* z, const floating* y, floating* delta,
                         Py_ssize_t width, double scale) noexcept nogil:
    """Loss of one row; delta = scale * dLoss/dz for that row."""
    cdef Py_ssize_t j
    cdef double loss = 0, diff, zj, top, total, log_sum, y_sum, inner
    cdef floating error
    if loss_code == MSE or loss_code == TUTORIAL:
        for j in range(width):
            # Difference and square in the network's precision (as NumPy does
            # them), so a float32 square that overflows is inf on both backends.
            error = a[j] - y[j]
            diff = error
            loss += <floating>(error * error)
            if loss_code == TUTORIAL:
                delta[j] = <floating>(scale * diff)
            else:
                delta[j] = <floating>(scale * 2.0 * diff / width)
        loss /= width
        if loss_code == MSE:
            if activation == SOFTMAX:
                # Softmax Jacobian: dz_j = a_j (g_j - sum_k g_k a_k).
                inner = 0
                for j in range(width):
                    inner += <double>delta[j] * a[j]
                for j in range(width):
                    delta[j] = <floating>(a[j] * (delta[j] - inner))
            else:
                multiply_derivative(activation, delta, a, width)
    elif loss_code == BCE:
        # On logits: max(z, 0) - z y + log(1 + exp(-|z|)) never overflows.
        for j in range(width):
            zj = z[j]
            loss += (zj if zj > 0 else 0.0) - zj * y[j] + log1p(exp(-fabs(zj)))
            delta[j] = <floating>(scale * (<double>a[j] - y[j]) / width)
        loss /= width
    elif loss_code == CROSS_ENTROPY:
        # -sum y log softmax(z) = sum y (logsumexp(z) - z).
        top = row_max(z, width)
        total = 0
        y_sum = 0
        for j in range(width):
            total += exp(<double>z[j] - top)
            y_sum += y[j]
        log_sum = top + log(total)
        for j in range(width):
            loss += y[j] * (log_sum - z[j])
            delta[j] = <floating>(scale * (a[j] * y_sum - y[j]))
    elif loss_code == POISSON:
        # On the log-mean z, in double; a = exp(z) overflows to inf, and the
        # loss with it, where the trainer's divergence checks catch it.
        for j in range(width):
            zj = z[j]
            loss += exp(zj) - y[j] * zj
            delta[j] = <floating>(scale * (<double>a[j] - y[j]) / width)
        loss /= width
    return loss


# ---------------------------------------------------------------- sparse input

ctypedef struct sparse_rows:
    # Rows of a CSR matrix whose values are the ``x`` passed beside it: batch
    # row r is the stored row i = rows[r] (``rows`` NULL: i = r), the values
    # x[indptr[i]:indptr[i + 1]] in the columns indices[indptr[i]:indptr[i + 1]].
    const Py_ssize_t* indices
    const Py_ssize_t* indptr
    const Py_ssize_t* rows


cdef inline sparse_rows sparse_from(const sparse_rows* sparse, Py_ssize_t start) noexcept nogil:
    """The rows of ``sparse`` (``rows`` NULL) from row ``start`` on."""
    cdef sparse_rows block = sparse[0]
    block.indptr += start
    return block


cdef void sparse_times_matrix(const floating* values, const sparse_rows* sparse,
                              Py_ssize_t rows, Py_ssize_t n_out, const floating* w,
                              floating* z) noexcept nogil:
    """z = X W for sparse rows X: z[r] = sum of v W[j] over row r's stored (j, v)."""
    cdef Py_ssize_t r, i, p
    cdef floating* z_row
    for r in range(rows):
        i = sparse.rows[r] if sparse.rows != NULL else r
        z_row = z + r * n_out
        memset(z_row, 0, n_out * sizeof(floating))
        for p in range(sparse.indptr[i], sparse.indptr[i + 1]):
            axpy(n_out, values[p], w + sparse.indices[p] * n_out, z_row)


cdef void sparse_scatter(floating alpha, const floating* values, const sparse_rows* sparse,
                         Py_ssize_t rows, Py_ssize_t n_out, const floating* delta,
                         floating* target) noexcept nogil:
    """target += alpha X^T delta: target[j] += alpha v delta[r] over row r's stored (j, v)."""
    cdef Py_ssize_t r, i, p
    for r in range(rows):
        i = sparse.rows[r] if sparse.rows != NULL else r
        for p in range(sparse.indptr[i], sparse.indptr[i + 1]):
            # alpha v in the network's precision, as the dense products scale a row.
            axpy(n_out, alpha * values[p], delta + r * n_out, target + sparse.indices[p] * n_out)


cdef Py_ssize_t check_csr(Py_ssize_t n_values, const Py_ssize_t[::1] indices,
                          const Py_ssize_t[::1] indptr, Py_ssize_t n_features,
                          sparse_rows* out) except -1:
    """The number of rows of a CSR matrix (filling ``out``); raises if its structure is off.

    One pass over the structure, so that no row of a malformed matrix makes
    a kernel read or write outside its buffers.
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1, n_stored = indices.shape[0], r, p
    cdef Py_ssize_t bad_row = -1, bad_entry = -1
    if n_rows < 0:
        raise ValueError("indptr must have n_rows + 1 entries; it is empty")
    if indptr[0] != 0 or indptr[n_rows] != n_stored or n_values != n_stored:
        raise ValueError(f"malformed CSR rows: indptr must start at 0 and end at the "
                         f"number of stored entries (indptr runs from {indptr[0]} to "
                         f"{indptr[n_rows]}; indices holds {n_stored}, data {n_values})")
    with nogil:
        for r in range(n_rows):
            if indptr[r + 1] < indptr[r]:
                bad_row = r
                break
        for p in range(n_stored):
            if not 0 <= indices[p] < n_features:
                bad_entry = p
                break
    if bad_row >= 0:
        raise ValueError(f"malformed CSR rows: indptr decreases after row {bad_row}")
    if bad_entry >= 0:
        raise ValueError(f"malformed CSR rows: the column index {indices[bad_entry]} "
                         f"(stored entry {bad_entry}) lies outside 0..{n_features - 1}")
    out.indices = &indices[0] if n_stored else NULL
    out.indptr = &indptr[0]
    out.rows = NULL
    return n_rows


cdef Py_ssize_t check_csr_rows(X, dtype, Py_ssize_t n_features,
                               sparse_rows* out) except -1:
    """``check_csr`` on a ``CSRRows``, after checking the dtypes of its arrays."""
    import numpy
    for name, array, kind in (("data", X.data, dtype), ("indices", X.indices, numpy.intp),
                              ("indptr", X.indptr, numpy.intp)):
        if (getattr(array, "dtype", None) != kind or array.ndim != 1
                or not array.flags.c_contiguous):
            raise ValueError(f"the CSR rows' {name} must be a C-contiguous 1-D array of "
                             f"{numpy.dtype(kind).name}")
    if X.shape[1] != n_features or X.indptr.shape[0] != X.shape[0] + 1:
        raise ValueError(f"CSR rows of shape {X.shape} with {X.indptr.shape[0]} row "
                         f"pointers do not match a network of {n_features} inputs")
    return check_csr(X.data.shape[0], X.indices, X.indptr, n_features, out)


cdef inline bint is_csr(X):
    """Whether ``X`` is sparse rows (``CSRRows`` or alike) rather than a dense array."""
    return hasattr(X, "indptr")


# ---------------------------------------------------------------- one batch

cdef inline Py_ssize_t activation_offset(const Py_ssize_t* layout, Py_ssize_t layer,
                                         Py_ssize_t capacity, bint dense_input) noexcept nogil:
    """Where the activations of ``layer`` (0 = the input) start in the workspace.

    Only a dense input has a slot there; sparse rows are read in place.
    """
    cdef Py_ssize_t l, offset = capacity * layout[N_IN] if dense_input else 0
    for l in range(layer - 1):
        offset += capacity * layout[l * LAYOUT_COLUMNS + N_OUT]
    return offset if layer > 0 else 0


cdef void forward_batch(const floating* params, const Py_ssize_t* layout,
                        Py_ssize_t n_layers, const floating* x, const sparse_rows* sparse,
                        Py_ssize_t rows, floating* workspace, Py_ssize_t capacity,
                        floating* z_out, bint first_done) noexcept nogil:
    """Activations of every layer for ``rows`` input rows ``x``.

    With ``sparse``, ``x`` holds the values of those sparse rows. With
    ``first_done``, the first layer's product ``x W`` is already in its
    activation buffer (left there by ``first_layer_step``).
    """
    cdef Py_ssize_t l, r, j, n_in, n_out, bias_offset
    cdef const Py_ssize_t* row
    cdef const floating* a_prev = x
    cdef floating* a
    for l in range(n_layers):
        row = layout + l * LAYOUT_COLUMNS
        n_in = row[N_IN]
        n_out = row[N_OUT]
        a = workspace + activation_offset(layout, l + 1, capacity, sparse == NULL)
        if l == 0 and first_done:
            pass
        elif l == 0 and sparse != NULL:
            sparse_times_matrix(x, sparse, rows, n_out, params + row[W_OFFSET], a)
        elif rows == 1:
            row_times_matrix(n_in, n_out, a_prev, params + row[W_OFFSET], a)
        else:
            gemm(False, False, <int>rows, <int>n_out, <int>n_in, 1, a_prev, <int>n_in,
                 params + row[W_OFFSET], <int>n_out, 0, a, <int>n_out)
        bias_offset = row[B_OFFSET]
        activate(<int>row[ACTIVATION], a, params + bias_offset if bias_offset >= 0 else NULL,
                 z_out if l == n_layers - 1 else NULL, rows, n_out)
        a_prev = a


cdef void backward_batch(floating* params, const Py_ssize_t* layout,
                         Py_ssize_t n_layers, const floating* x, const sparse_rows* sparse,
                         Py_ssize_t rows,
                         floating* workspace, Py_ssize_t capacity,
                         floating* delta, floating* spare, floating* grad,
                         double learning_rate, const floating* x_next,
                         const cymlp_step* step, floating* state,
                         Py_ssize_t n_params) noexcept nogil:
    """Backpropagate delta = dLoss/dz of the output layer.

    With ``grad``, write dLoss/dparams there. With ``grad`` NULL, apply plain
    SGD on the fly instead, ``params -= learning_rate * dLoss/dparams``: each
    layer's update is folded into the product that computes its gradient, so
    the gradient is never stored (after that layer's weights have been used to
    pass delta further back). With ``x_next`` too (plain SGD on one row), the
    pass over the first layer's weights also computes the next row's first
    product ``x_next W`` into that layer's activation buffer, which is no
    longer read; the next ``forward_batch`` starts from it (``first_done``).
    With ``step`` (one row, any other optimizer), each layer's optimizer step
    is taken in the pass over its weights that passes delta back, with the
    moments in ``state`` (two buffers of ``n_params``): no gradient is stored.
    With ``sparse`` (``x`` its values; neither ``x_next`` nor ``step``), the
    first layer's weight gradient is scattered into the rows of W that the
    stored entries name (that layer passes no delta back, so plain SGD can
    step W in place); the rest of its gradient block is 0.
    """
    cdef Py_ssize_t l, r, j, n_in, n_out, bias_offset
    cdef const Py_ssize_t* row
    cdef const floating* a_prev
    cdef floating* swap
    cdef floating* target
    cdef floating alpha = 1 if grad != NULL else <floating>(-learning_rate)
    cdef floating beta = 0 if grad != NULL else 1
    cdef floating one = 1
    cdef floating* second = state + n_params if state != NULL else NULL
    for l in range(n_layers - 1, -1, -1):
        row = layout + l * LAYOUT_COLUMNS
        n_in = row[N_IN]
        n_out = row[N_OUT]
        a_prev = x if l == 0 else workspace + activation_offset(layout, l, capacity,
                                                                sparse == NULL)
        if l == 0 and sparse != NULL:
            if grad != NULL:
                memset(grad + row[W_OFFSET], 0, n_in * n_out * sizeof(floating))
            sparse_scatter(alpha, x, sparse, rows, n_out, delta,
                           (grad if grad != NULL else params) + row[W_OFFSET])
        elif rows == 1 and step != NULL:
            row_optimizer(n_in, n_out, a_prev, delta, params + row[W_OFFSET],
                          state + row[W_OFFSET], second + row[W_OFFSET],
                          spare if l > 0 else NULL, step)
        elif l == 0 and rows == 1 and grad == NULL and x_next != NULL:
            first_layer_step(n_in, n_out, alpha, x, delta, params + row[W_OFFSET], x_next,
                             workspace + activation_offset(layout, 1, capacity, True))
        elif rows == 1:
            # One pass over W for both products (delta_prev from W before the step).
            row_backward(n_in, n_out, alpha, a_prev, delta, params + row[W_OFFSET],
                         grad + row[W_OFFSET] if grad != NULL else NULL,
                         spare if l > 0 else NULL)
        else:
            if l > 0:
                gemm(False, True, <int>rows, <int>n_in, <int>n_out, 1, delta, <int>n_out,
                     params + row[W_OFFSET], <int>n_out, 0, spare, <int>n_in)
            target = (grad if grad != NULL else params) + row[W_OFFSET]
            gemm(True, False, <int>n_in, <int>n_out, <int>rows, alpha, a_prev, <int>n_in,
                 delta, <int>n_out, beta, target, <int>n_out)
        if l > 0:
            multiply_derivative(<int>layout[(l - 1) * LAYOUT_COLUMNS + ACTIVATION],
                                spare, a_prev, rows * n_in)
        bias_offset = row[B_OFFSET]
        if bias_offset >= 0 and rows == 1 and step != NULL:
            row_optimizer(1, n_out, &one, delta, params + bias_offset, state + bias_offset,
                          second + bias_offset, NULL, step)
        elif bias_offset >= 0:
            # The bias gradient sums delta over the rows, in row order, into its
            # first row (delta is not read again): contiguous, vectorised adds.
            target = (grad if grad != NULL else params) + bias_offset
            for r in range(1, rows):
                for j in range(n_out):
                    delta[j] += delta[r * n_out + j]
            if grad != NULL:
                memcpy(target, delta, n_out * sizeof(floating))
            else:
                for j in range(n_out):
                    target[j] += alpha * delta[j]
        if l > 0:
            swap = delta
            delta = spare
            spare = swap


cdef double weight_total(const floating* weights, const Py_ssize_t* order,
                         Py_ssize_t rows) noexcept nogil:
    """sum_r weights[order[r]] in double, in row order (``order`` NULL: rows 0, 1, ...)."""
    cdef Py_ssize_t r
    cdef double total = 0
    for r in range(rows):
        total += weights[order[r] if order != NULL else r]
    return total


cdef double forward_loss(const floating* params, const Py_ssize_t* layout,
                         Py_ssize_t n_layers, int loss_code, const floating* x,
                         const sparse_rows* sparse, const floating* y, const floating* weights,
                         const Py_ssize_t* y_rows, Py_ssize_t rows, double weight_sum,
                         floating* workspace, Py_ssize_t capacity,
                         double* correct, bint first_done) noexcept nogil:
    """sum_r w_r l_r of a batch; leaves d(sum_r w_r l_r / weight_sum)/dz in the delta buffer.

    ``weights`` (NULL: every w_r is 1) and the targets ``y`` are indexed by
    ``y_rows``, which maps batch row r to its target row (NULL: row r
    itself). ``weight_sum`` is what the mean divides by: the batch's rows or
    weights, or those of all the rows (``loss_and_grad`` in blocks). A row of
    weight 0 counts for nothing (delta 0), even where its loss overflows.
    ``correct`` adds sum_r w_r [row r classified correctly]; ``sparse`` and
    ``first_done`` as for ``forward_batch``.
    """
    cdef Py_ssize_t r, target, n_out = layout[(n_layers - 1) * LAYOUT_COLUMNS + N_OUT]
    cdef int activation = <int>layout[(n_layers - 1) * LAYOUT_COLUMNS + ACTIVATION]
    cdef floating* a_out = workspace + activation_offset(layout, n_layers, capacity,
                                                         sparse == NULL)
    cdef floating* z_out = a_out + capacity * n_out
    cdef floating* delta = z_out + capacity * n_out
    cdef const floating* y_row
    cdef double total = 0, scale = 1.0 / weight_sum, weight
    # Only the losses on logits read the output pre-activations.
    forward_batch(params, layout, n_layers, x, sparse, rows, workspace, capacity,
                  z_out if loss_code == BCE or loss_code == CROSS_ENTROPY or loss_code == POISSON
                  else NULL, first_done)
    for r in range(rows):
        target = y_rows[r] if y_rows != NULL else r
        y_row = y + target * n_out
        if weights == NULL:
            total += output_delta(loss_code, activation, a_out + r * n_out,
                                  z_out + r * n_out, y_row, delta + r * n_out, n_out, scale)
            correct[0] += row_correct(a_out + r * n_out, y_row, n_out)
            continue
        weight = weights[target]
        if weight == 0:
            memset(delta + r * n_out, 0, n_out * sizeof(floating))
            continue
        total += weight * output_delta(loss_code, activation, a_out + r * n_out,
                                       z_out + r * n_out, y_row, delta + r * n_out, n_out,
                                       weight / weight_sum)
        correct[0] += weight * row_correct(a_out + r * n_out, y_row, n_out)
    return total


cdef void backward_from_loss(floating* params, const Py_ssize_t* layout,
                             Py_ssize_t n_layers, const floating* x,
                             const sparse_rows* sparse, Py_ssize_t rows,
                             floating* workspace, Py_ssize_t capacity, floating* grad,
                             double learning_rate, const floating* x_next,
                             const cymlp_step* step, floating* state,
                             Py_ssize_t n_params) noexcept nogil:
    """backward_batch from the delta buffer that forward_loss filled."""
    cdef Py_ssize_t l, max_width = 0
    cdef Py_ssize_t n_out = layout[(n_layers - 1) * LAYOUT_COLUMNS + N_OUT]
    cdef floating* delta = (workspace + activation_offset(layout, n_layers, capacity,
                                                          sparse == NULL)
                            + 2 * capacity * n_out)
    for l in range(n_layers):
        if layout[l * LAYOUT_COLUMNS + N_OUT] > max_width:
            max_width = layout[l * LAYOUT_COLUMNS + N_OUT]
    backward_batch(params, layout, n_layers, x, sparse, rows, workspace, capacity, delta,
                   delta + capacity * max_width, grad, learning_rate, x_next, step, state,
                   n_params)


# ---------------------------------------------------------------- optimizers

cdef extern from "loops.h" nogil:
    # One optimizer step, for row_optimizer (the kinds are loops.h's).
    enum:
        CYMLP_STEP_SGD
        CYMLP_STEP_MOMENTUM
        CYMLP_STEP_NESTEROV
        CYMLP_STEP_ADAM
    ctypedef struct cymlp_step:
        int kind
        double learning_rate, momentum, weight_decay
        double beta1, beta2, step_size, inverse_correction2, eps
    # One row's backward products and optimizer step on a layer, in one pass.
    void row_optimizer_float(Py_ssize_t n_in, Py_ssize_t n_out, const float* a_prev,
                             const float* delta, float* w, float* first, float* second,
                             float* delta_prev, const cymlp_step* step)
    void row_optimizer_double(Py_ssize_t n_in, Py_ssize_t n_out, const double* a_prev,
                              const double* delta, double* w, double* first, double* second,
                              double* delta_prev, const cymlp_step* step)
    # x, or +0 where x is zero or subnormal (integer operations: vectorises).
    float flush_float(float x)
    double flush_double(double x)
    # Adam's update of n parameters, in their precision.
    void adam_update_double(Py_ssize_t n, double* params, const double* grad, double* first,
                            double* second, double beta1, double beta2, double step_size,
                            double inverse_correction2, double eps)
    void adam_update_float(Py_ssize_t n, float* params, const float* grad, float* first,
                           float* second, double beta1, double beta2, double step_size,
                           double inverse_correction2, double eps)


cdef inline void row_optimizer(Py_ssize_t n_in, Py_ssize_t n_out, const floating* a_prev,
                               const floating* delta, floating* w, floating* first,
                               floating* second, floating* delta_prev,
                               const cymlp_step* step) noexcept nogil:
    """delta_prev = W delta, then one optimizer step of W on the gradient a_prev^T delta."""
    if floating is float:
        row_optimizer_float(n_in, n_out, a_prev, delta, w, first, second, delta_prev, step)
    else:
        row_optimizer_double(n_in, n_out, a_prev, delta, w, first, second, delta_prev, step)


cdef void fill_step(const double* hyperparams, int optimizer_code, long long step,
                    bint single, cymlp_step* out) noexcept nogil:
    """The optimizer step number ``step`` (from 1) as row_optimizer takes it.

    Whether there is momentum is judged in the parameters' precision, as
    ``optimizer_step`` judges it (a momentum that rounds to 0 is none).
    """
    cdef bint no_momentum = (<float>hyperparams[MOMENTUM] == 0 if single
                             else hyperparams[MOMENTUM] == 0)
    out.learning_rate = hyperparams[LEARNING_RATE]
    out.momentum = hyperparams[MOMENTUM]
    out.weight_decay = hyperparams[WEIGHT_DECAY]
    out.beta1 = hyperparams[BETA1]
    out.beta2 = hyperparams[BETA2]
    out.eps = hyperparams[EPSILON]
    if optimizer_code == ADAM:
        out.kind = CYMLP_STEP_ADAM
        out.step_size = hyperparams[LEARNING_RATE] / (1.0 - hyperparams[BETA1] ** step)
        out.inverse_correction2 = 1.0 / sqrt(1.0 - hyperparams[BETA2] ** step)
    elif no_momentum:
        out.kind = CYMLP_STEP_SGD
    else:
        out.kind = CYMLP_STEP_NESTEROV if hyperparams[NESTEROV] != 0 else CYMLP_STEP_MOMENTUM


cdef inline floating flush(floating x) noexcept nogil:
    """x, or +0 where x is zero or subnormal (loops.h)."""
    if floating is float:
        return flush_float(x)
    else:
        return flush_double(x)


cdef void optimizer_step(int optimizer_code, const double* hyperparams,
                         floating* params, floating* grad, floating* state,
                         Py_ssize_t n_params, long long step) noexcept nogil:
    """One update of params from grad, as torch.optim.SGD / torch.optim.Adam do it.

    ``state`` holds two buffers of ``n_params``: the momentum buffer (SGD), or
    the first and second moments (Adam). ``step`` counts from 1. ``grad`` is
    overwritten. Each case is its own branch-free loop, so the compiler can
    vectorise it; Adam's loop is the multiversioned C function above.
    """
    cdef Py_ssize_t i
    cdef floating learning_rate = <floating>hyperparams[LEARNING_RATE]
    cdef floating weight_decay = <floating>hyperparams[WEIGHT_DECAY]
    cdef floating momentum = <floating>hyperparams[MOMENTUM]
    cdef double step_size, inverse_correction2
    cdef floating* first = state
    cdef floating* second = state + n_params
    if weight_decay != 0:
        for i in range(n_params):
            grad[i] += weight_decay * params[i]
    if optimizer_code == SGD:
        if momentum == 0:
            for i in range(n_params):
                params[i] -= learning_rate * grad[i]
        elif hyperparams[NESTEROV] != 0:
            for i in range(n_params):
                # A buffer that decays below the normal range is flushed to 0,
                # as Adam's moments are: subnormal arithmetic is many times slower.
                first[i] = flush(momentum * first[i] + grad[i])
                params[i] -= learning_rate * (grad[i] + momentum * first[i])
        else:
            for i in range(n_params):
                first[i] = flush(momentum * first[i] + grad[i])
                params[i] -= learning_rate * first[i]
    elif optimizer_code == ADAM:
        step_size = hyperparams[LEARNING_RATE] / (1.0 - hyperparams[BETA1] ** step)
        inverse_correction2 = 1.0 / sqrt(1.0 - hyperparams[BETA2] ** step)
        if floating is float:
            adam_update_float(n_params, params, grad, first, second, hyperparams[BETA1],
                              hyperparams[BETA2], step_size, inverse_correction2,
                              hyperparams[EPSILON])
        else:
            adam_update_double(n_params, params, grad, first, second, hyperparams[BETA1],
                               hyperparams[BETA2], step_size, inverse_correction2,
                               hyperparams[EPSILON])


# ---------------------------------------------------------------- entry points

cdef Py_ssize_t check_layout(const Py_ssize_t[:, ::1] layout, Py_ssize_t n_params,
                             Py_ssize_t n_in, Py_ssize_t n_out, bint sparse) except -1:
    """Width of a workspace row (see ``activation_offset``); raises if the layout is off.

    ``n_in`` -1 (CSR arrays, which carry no width) takes the layout's; a
    ``sparse`` input has no slot in the workspace.
    """
    cdef Py_ssize_t l, total = 0, max_width = 0, n_layers = layout.shape[0]
    cdef Py_ssize_t width, last_param
    if layout.shape[1] != LAYOUT_COLUMNS or n_layers < 1:
        raise ValueError("layout must have shape (n_layers >= 1, 5)")
    if (n_in >= 0 and layout[0, N_IN] != n_in) or layout[n_layers - 1, N_OUT] != n_out:
        raise ValueError("X or Y does not match the layout")
    for l in range(n_layers):
        width = layout[l, N_OUT]
        if layout[l, N_IN] < 1 or width < 1 or (l > 0 and layout[l, N_IN] != layout[l - 1, N_OUT]):
            raise ValueError("layout has inconsistent layer sizes")
        last_param = layout[l, W_OFFSET] + layout[l, N_IN] * width
        if layout[l, W_OFFSET] < 0 or last_param > n_params or layout[l, B_OFFSET] + width > n_params:
            raise ValueError("params is too short for the layout")
        total += width
        if width > max_width:
            max_width = width
    # Per row: input, activations, output pre-activations, two deltas.
    return (0 if sparse else layout[0, N_IN]) + total + layout[n_layers - 1, N_OUT] + 2 * max_width


def forward(const floating[::1] params, const Py_ssize_t[:, ::1] layout,
            const floating[:, ::1] X, floating[:, ::1] out, Py_ssize_t block_rows):
    """out = f_L(... f_1(X W_1 + b_1) ... W_L + b_L), ``block_rows`` rows at a time."""
    check_layout(layout, params.shape[0], X.shape[1], out.shape[1], False)
    return forward_rows(params, layout, &X[0, 0] if X.shape[0] else NULL, NULL, X.shape[0],
                        out, block_rows)


def forward_csr(const floating[::1] params, const Py_ssize_t[:, ::1] layout,
                const floating[::1] data, const Py_ssize_t[::1] indices,
                const Py_ssize_t[::1] indptr, floating[:, ::1] out, Py_ssize_t block_rows):
    """``forward`` for X given as CSR rows (``data``, ``indices``, ``indptr``)."""
    cdef sparse_rows sparse
    check_layout(layout, params.shape[0], -1, out.shape[1], True)
    cdef Py_ssize_t n_rows = check_csr(data.shape[0], indices, indptr, layout[0, N_IN], &sparse)
    return forward_rows(params, layout, &data[0] if data.shape[0] else NULL, &sparse, n_rows,
                        out, block_rows)


cdef object forward_rows(const floating[::1] params, const Py_ssize_t[:, ::1] layout,
                         const floating* x, const sparse_rows* sparse, Py_ssize_t n_rows,
                         floating[:, ::1] out, Py_ssize_t block_rows):
    """``forward`` on ``n_rows`` rows from ``x`` (dense, or the values of ``sparse``)."""
    cdef Py_ssize_t n_layers = layout.shape[0], n_in = layout[0, N_IN]
    cdef Py_ssize_t n_out = out.shape[1], start, rows
    cdef Py_ssize_t width = check_layout(layout, params.shape[0], n_in, n_out, sparse != NULL)
    cdef sparse_rows block
    if out.shape[0] != n_rows or block_rows < 1:
        raise ValueError("out must have one row per row of X, and block_rows >= 1")
    if n_rows == 0:
        return
    ensure_blas(layout, min(block_rows, n_rows))
    cdef floating[::1] workspace = _workspace(params, width * block_rows)
    cdef floating* a_out = &workspace[0] + activation_offset(&layout[0, 0], n_layers, block_rows,
                                                             sparse == NULL)
    with nogil:
        start = 0
        while start < n_rows:
            rows = min(block_rows, n_rows - start)
            if sparse != NULL:
                block = sparse_from(sparse, start)
            forward_batch(&params[0], &layout[0, 0], n_layers,
                          x if sparse != NULL else x + start * n_in,
                          &block if sparse != NULL else NULL, rows, &workspace[0], block_rows,
                          NULL, False)
            memcpy(&out[start, 0], a_out, rows * n_out * sizeof(floating))
            start += rows


def evaluate(const floating[::1] params, const Py_ssize_t[:, ::1] layout, int loss,
             const floating[:, ::1] X, const floating[:, ::1] Y, Py_ssize_t block_rows,
             sample_weight=None):
    """(sum_i w_i l_i, sum_i w_i [row i classified correctly]); w_i = 1 without weights."""
    check_layout(layout, params.shape[0], X.shape[1], Y.shape[1], False)
    return evaluate_input(params, layout, loss, &X[0, 0] if X.shape[0] else NULL, NULL,
                          X.shape[0], Y, block_rows, sample_weight, None)


def evaluate_csr(const floating[::1] params, const Py_ssize_t[:, ::1] layout, int loss,
                 const floating[::1] data, const Py_ssize_t[::1] indices,
                 const Py_ssize_t[::1] indptr, const floating[:, ::1] Y, Py_ssize_t block_rows,
                 sample_weight=None):
    """``evaluate`` for X given as CSR rows (``data``, ``indices``, ``indptr``)."""
    cdef sparse_rows sparse
    check_layout(layout, params.shape[0], -1, Y.shape[1], True)
    cdef Py_ssize_t n_rows = check_csr(data.shape[0], indices, indptr, layout[0, N_IN], &sparse)
    return evaluate_input(params, layout, loss, &data[0] if data.shape[0] else NULL, &sparse,
                          n_rows, Y, block_rows, sample_weight, None)


cdef object evaluate_input(const floating[::1] params, const Py_ssize_t[:, ::1] layout,
                           int loss, const floating* x, const sparse_rows* sparse,
                           Py_ssize_t n_rows, const floating[:, ::1] Y, Py_ssize_t block_rows,
                           sample_weight, workspace):
    """``evaluate`` on ``n_rows`` rows from ``x`` (dense, or the values of ``sparse``).

    ``workspace``: an array of at least ``block_rows`` workspace rows to use,
    or None for a new one.
    """
    cdef Py_ssize_t width = check_layout(layout, params.shape[0], layout[0, N_IN], Y.shape[1],
                                         sparse != NULL)
    if block_rows < 1:
        raise ValueError("block_rows must be >= 1")
    if Y.shape[0] != n_rows:
        raise ValueError("X and Y must have the same number of rows")
    check_sample_weight(sample_weight, n_rows, _dtype(params))
    if n_rows == 0:
        return no_rows(sample_weight)
    ensure_blas(layout, min(block_rows, n_rows))
    cdef floating[::1] space = (_workspace(params, width * block_rows) if workspace is None
                                else workspace)
    return evaluate_rows(params, layout, loss, x, sparse, n_rows, Y, sample_weight, block_rows,
                         space)


cdef evaluate_rows(const floating[::1] params, const Py_ssize_t[:, ::1] layout, int loss,
                   const floating* x, const sparse_rows* sparse, Py_ssize_t n_rows,
                   const floating[:, ::1] Y, sample_weight, Py_ssize_t block_rows,
                   floating[::1] workspace):
    """``evaluate`` in a workspace of at least ``block_rows`` rows."""
    cdef Py_ssize_t n_layers = layout.shape[0], n_in = layout[0, N_IN]
    cdef Py_ssize_t start, rows
    cdef double total = 0, correct = 0
    cdef const floating[::1] weight_view
    cdef const floating* weights = NULL
    cdef sparse_rows block
    if sample_weight is not None:
        weight_view = sample_weight
        weights = &weight_view[0]
    with nogil:
        start = 0
        while start < n_rows:
            rows = min(block_rows, n_rows - start)
            if sparse != NULL:
                block = sparse_from(sparse, start)
            # (the delta that forward_loss leaves behind is not read)
            total += forward_loss(&params[0], &layout[0, 0], n_layers, loss,
                                  x if sparse != NULL else x + start * n_in,
                                  &block if sparse != NULL else NULL, &Y[start, 0],
                                  weights + start if weights != NULL else NULL, NULL, rows,
                                  rows, &workspace[0], block_rows, &correct, False)
            start += rows
    if weights == NULL:
        return total, <Py_ssize_t>correct
    return total, correct


def loss_and_grad(const floating[::1] params, const Py_ssize_t[:, ::1] layout, int loss,
                  const floating[:, ::1] X, const floating[:, ::1] Y, floating[::1] grad,
                  sample_weight=None):
    """grad = d(sum_i w_i l_i / sum_i w_i)/d params over the rows of X; returns that mean.

    Without weights every w_i is 1 (the mean loss). The rows go through in
    blocks (``cymlp._params.block_rows``), so the workspace stays a few MB
    for any number of rows; the gradient is summed over the blocks.
    """
    check_layout(layout, params.shape[0], X.shape[1], Y.shape[1], False)
    return loss_and_grad_rows(params, layout, loss, &X[0, 0] if X.shape[0] else NULL, NULL,
                              X.shape[0], Y, grad, sample_weight)


def loss_and_grad_csr(const floating[::1] params, const Py_ssize_t[:, ::1] layout, int loss,
                      const floating[::1] data, const Py_ssize_t[::1] indices,
                      const Py_ssize_t[::1] indptr, const floating[:, ::1] Y,
                      floating[::1] grad, sample_weight=None):
    """``loss_and_grad`` for X given as CSR rows (``data``, ``indices``, ``indptr``)."""
    cdef sparse_rows sparse
    check_layout(layout, params.shape[0], -1, Y.shape[1], True)
    cdef Py_ssize_t n_rows = check_csr(data.shape[0], indices, indptr, layout[0, N_IN], &sparse)
    return loss_and_grad_rows(params, layout, loss, &data[0] if data.shape[0] else NULL,
                              &sparse, n_rows, Y, grad, sample_weight)


cdef object loss_and_grad_rows(const floating[::1] params, const Py_ssize_t[:, ::1] layout,
                               int loss, const floating* x, const sparse_rows* sparse,
                               Py_ssize_t n_rows, const floating[:, ::1] Y, floating[::1] grad,
                               sample_weight):
    """``loss_and_grad`` on ``n_rows`` rows from ``x`` (dense, or the values of ``sparse``)."""
    import numpy
    from cymlp._params import block_rows
    cdef Py_ssize_t n_layers = layout.shape[0], n_params = params.shape[0]
    cdef Py_ssize_t n_in = layout[0, N_IN], start, rows, block
    cdef double total = 0, weight_sum, correct = 0
    cdef const floating[::1] weight_view
    cdef const floating* weights = NULL
    cdef const floating* block_weights = NULL
    cdef const floating* inputs
    cdef floating* block_grad
    cdef sparse_rows block_rows_sparse
    cdef const sparse_rows* block_sparse = NULL
    cdef Py_ssize_t width = check_layout(layout, n_params, n_in, Y.shape[1], sparse != NULL)
    if Y.shape[0] != n_rows or n_rows < 1 or grad.shape[0] != n_params:
        raise ValueError("X, Y and grad do not match")
    check_sample_weight(sample_weight, n_rows, _dtype(params))
    if sample_weight is not None:
        weight_view = sample_weight
        weights = &weight_view[0]
        weight_sum = weight_total(weights, NULL, n_rows)
        if not weight_sum > 0:
            raise ValueError("sample_weight sums to 0: the weighted mean loss is undefined")
    else:
        weight_sum = n_rows
    block = block_rows(numpy.asarray(layout), n_rows, sparse=sparse != NULL)
    ensure_blas(layout, block)
    cdef floating[::1] workspace = _workspace(params, width * block)
    # One block writes its gradient into grad; more are summed there.
    cdef floating[::1] block_gradient = grad if block >= n_rows else _workspace(params, n_params)
    block_grad = &block_gradient[0]
    if sparse != NULL:
        block_sparse = &block_rows_sparse
    with nogil:
        if block < n_rows:
            memset(&grad[0], 0, n_params * sizeof(floating))
        start = 0
        while start < n_rows:
            rows = min(block, n_rows - start)
            if weights != NULL:
                block_weights = weights + start
                if weight_total(block_weights, NULL, rows) == 0:
                    start += rows   # rows of weight 0 count for nothing
                    continue
            if sparse != NULL:
                block_rows_sparse = sparse_from(sparse, start)
                inputs = x
            else:
                inputs = x + start * n_in
            total += forward_loss(&params[0], &layout[0, 0], n_layers, loss, inputs,
                                  block_sparse, &Y[start, 0], block_weights, NULL, rows,
                                  weight_sum, &workspace[0], block, &correct, False)
            # params is only read when a gradient buffer is given.
            backward_from_loss(<floating*>&params[0], &layout[0, 0], n_layers, inputs,
                               block_sparse, rows, &workspace[0], block, block_grad, 0.0,
                               NULL, NULL, NULL, 0)
            if block < n_rows:
                axpy(n_params, <floating>1, block_grad, &grad[0])
            start += rows
    return total / weight_sum


cdef object no_rows(sample_weight):
    """(loss, correct) of no rows: (0.0, 0), or (0.0, 0.0) with weights."""
    if sample_weight is None:
        return 0.0, 0
    return 0.0, 0.0


cdef int check_sample_weight(sample_weight, Py_ssize_t n_rows, dtype) except -1:
    """Raise unless ``sample_weight`` is None or a C-contiguous (n_rows,) array of ``dtype``."""
    if sample_weight is None:
        return 0
    if (getattr(sample_weight, "dtype", None) != dtype or sample_weight.ndim != 1
            or not sample_weight.flags.c_contiguous or sample_weight.shape[0] != n_rows):
        raise ValueError(f"sample_weight must be None or a C-contiguous {dtype} array of "
                         f"shape ({n_rows},)")
    return 0


cdef object _dtype(const floating[::1] like):
    """The NumPy dtype of ``like``."""
    import numpy
    return numpy.dtype(numpy.float32 if floating is float else numpy.float64)


cdef object _workspace(const floating[::1] like, Py_ssize_t size):
    """A new scratch array of ``size`` elements in the dtype of ``like``."""
    import numpy
    return numpy.empty(size, dtype=_dtype(like))


cdef class Trainer:
    """Trains one network on ``(X, Y)``: built once per fit, run over chunks of rows.

    It updates the network's ``params`` and optimizer ``state`` in place and
    owns everything else a step needs: the workspace, the gradient, the step
    count, and snapshots taken at the start of the last two runs. The steps
    of a run are checked once, at its end (one pass over the parameters);
    only when something failed are they taken again, checked one by one.

    A step is kept only while everything stays finite. A batch whose loss is
    not finite is not stepped on, and the step before it (whose result gave
    that loss) is undone too; a step that makes a parameter or the optimizer
    state inf or NaN is undone. Undoing goes back to a snapshot and takes the
    steps after it again (the same operations on the same values: the same
    bits). The network is left at the last state whose loss was measured
    finite, and ``run`` says how many rows it kept. Where the caller cut the
    epoch into runs never changes which steps are kept.

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The network's flat parameter buffer (updated in place).
    layout : ndarray of shape (n_layers, 5), dtype intp
    loss : int
        A ``cymlp._codes.Loss``.
    X : ndarray of shape (n_samples, n_features), same dtype as params, or CSRRows
        Sparse rows (``cymlp._sparse.CSRRows``: values of that dtype, intp
        indices) are read in place; the workspace then holds no input rows.
    Y : ndarray of shape (n_samples, n_outputs), same dtype
    batch_size : int
    optimizer : cymlp.optim.SGD or cymlp.optim.Adam
    state : ndarray of shape (2, n_params), same dtype
        Momentum buffer, or Adam's moments (updated in place).
    step : int
        Optimizer steps taken so far (Adam's t).
    sample_weight : None or ndarray of shape (n_samples,), same dtype
        Finite weights >= 0 (checked by the caller). Each step descends on
        its batch's weighted mean loss ``sum w_i l_i / sum w_i``; a batch
        whose weights sum to 0 is skipped (no step), its rows counted done.
    """

    cdef readonly object params, layout, X, Y, state, sample_weight
    cdef object workspace, grad, snapshots, evaluation_workspace, csr_arrays
    cdef readonly Py_ssize_t batch_size
    cdef readonly long long step
    cdef int loss_code, optimizer_code, n_layers, current
    cdef Py_ssize_t n_params, capacity, n_in
    cdef bint single, plain_sgd, keeps_state, sparse
    # The structure of a sparse X (``X_data`` holds its values); ``rows`` NULL.
    cdef sparse_rows csr
    cdef double hyperparams[N_HYPERPARAMS]
    # Per run slot (the current run and the one before): its rows (a copy of
    # its part of ``order``, in buffers the trainer owns), rate, step at start,
    # and where its last step's batch starts (-1: it took none). The slot
    # before is that of the last run that kept a step.
    cdef Py_ssize_t* rows[2]
    cdef Py_ssize_t row_capacity[2]
    cdef Py_ssize_t row_counts[2]
    cdef Py_ssize_t last_steps[2]
    cdef Py_ssize_t n_rows
    cdef double rates[2]
    cdef long long start_steps[2]
    cdef void* params_data
    cdef const void* X_data
    cdef const void* Y_data
    cdef const void* weights_data
    cdef void* state_data
    cdef void* grad_data
    cdef void* workspace_data
    cdef void* snapshots_data
    cdef const Py_ssize_t* layout_data

    def __init__(self, params, layout, loss, X, Y, batch_size, optimizer, state, step,
                 sample_weight=None):
        import numpy
        cdef const Py_ssize_t[:, ::1] layout_view = layout
        dtype = params.dtype
        self.single = dtype == numpy.float32
        if not self.single and dtype != numpy.float64:
            raise TypeError("params must be float32 or float64")
        self.sparse = is_csr(X)
        for name, array in (("params", params), ("X", X.data if self.sparse else X), ("Y", Y),
                            ("state", state)):
            if array.dtype != dtype or not array.flags.c_contiguous:
                raise ValueError(f"{name} must be C-contiguous {dtype}")
        if not params.flags.writeable or not state.flags.writeable:
            raise ValueError("params and state must be writeable")
        self.n_params = params.shape[0]
        width = check_layout(layout_view, self.n_params, X.shape[1], Y.shape[1], self.sparse)
        if self.sparse:
            check_csr_rows(X, dtype, X.shape[1], &self.csr)
            # Kept here: the pointers in csr are into these arrays.
            self.csr_arrays = (X.data, X.indices, X.indptr)
        if batch_size < 1 or Y.shape[0] != X.shape[0] or state.shape != (2, self.n_params):
            raise ValueError("batch_size, X, Y or state do not match params")
        if not 0 <= step < 2 ** 62:
            raise ValueError("step must be >= 0 and below 2**62")
        check_sample_weight(sample_weight, X.shape[0], dtype)
        self.params, self.layout, self.X, self.Y, self.state = params, layout, X, Y, state
        self.sample_weight = sample_weight
        self.n_layers = layout.shape[0]
        self.n_in = X.shape[1]
        self.loss_code = int(loss)
        if not 0 <= self.loss_code <= POISSON or not 0 <= int(optimizer.code) <= ADAM:
            raise ValueError("unknown loss or optimizer code")
        for l in range(layout.shape[0]):
            if not 0 <= layout[l, ACTIVATION] <= EXP:
                raise ValueError("unknown activation code in layout")
        self.batch_size = batch_size
        self.capacity = max(1, min(batch_size, X.shape[0]))
        ensure_blas(layout_view, self.capacity)
        self.step = step
        self.optimizer_code = int(optimizer.code)
        self.hyperparams[LEARNING_RATE] = optimizer.lr
        self.hyperparams[MOMENTUM] = optimizer.momentum
        self.hyperparams[NESTEROV] = bool(optimizer.nesterov)
        self.hyperparams[WEIGHT_DECAY] = optimizer.weight_decay
        self.hyperparams[BETA1] = optimizer.beta1
        self.hyperparams[BETA2] = optimizer.beta2
        self.hyperparams[EPSILON] = optimizer.eps
        # Plain SGD needs no gradient buffer: backward_batch applies it on the fly.
        self.plain_sgd = (self.optimizer_code == SGD and self.hyperparams[MOMENTUM] == 0
                          and self.hyperparams[WEIGHT_DECAY] == 0)
        self.keeps_state = not (self.optimizer_code == SGD and self.hyperparams[MOMENTUM] == 0)
        self.grad = numpy.empty(self.n_params, dtype=dtype)
        self.workspace = numpy.empty(width * self.capacity, dtype=dtype)
        # Two snapshots of params and state (one per run slot), and the rows of each run.
        self.snapshots = numpy.empty((2, 3 * self.n_params), dtype=dtype)
        self.row_counts[0] = self.row_counts[1] = 0
        self.last_steps[0] = self.last_steps[1] = -1
        self.n_rows = X.shape[0]
        self.current = 0
        self.layout_data = &layout_view[0, 0]
        self.params_data = numpy_data(params)
        if self.sparse:
            self.X_data = numpy_data(X.data) if X.data.shape[0] else NULL
        else:
            self.X_data = numpy_data(X) if X.shape[0] else NULL
        self.Y_data = numpy_data(Y) if Y.shape[0] else NULL
        self.weights_data = (numpy_data(sample_weight)
                             if sample_weight is not None and X.shape[0] else NULL)
        self.state_data = numpy_data(state)
        self.grad_data = numpy_data(self.grad)
        self.workspace_data = numpy_data(self.workspace)
        self.snapshots_data = numpy_data(self.snapshots)
        self.evaluation_workspace = None

    def __dealloc__(self):
        PyMem_Free(self.rows[0])
        PyMem_Free(self.rows[1])

    def evaluate(self, X, Y, sample_weight=None):
        """(sum_i w_i l_i, sum_i w_i [row i correct]) of the network now on ``(X, Y)``.

        Without weights (every w_i 1): the summed loss and the number of rows
        classified correctly. ``X`` is dense or CSR rows, whichever the
        trainer was built on. For validation after each epoch: the workspace
        it needs is allocated on the first call and kept for the next ones.
        """
        import numpy
        from cymlp._params import block_rows
        sparse = is_csr(X)
        cdef Py_ssize_t width = check_layout(self.layout, self.n_params, X.shape[1],
                                             Y.shape[1], sparse)
        rows = block_rows(self.layout, X.shape[0], sparse=sparse)
        if (self.evaluation_workspace is None
                or self.evaluation_workspace.shape[0] < width * rows):
            self.evaluation_workspace = numpy.empty(width * rows, dtype=self.params.dtype)
        if self.single:
            return trainer_evaluate[float](self.params, self.layout, self.loss_code, X, Y,
                                           sample_weight, rows, self.evaluation_workspace)
        return trainer_evaluate[double](self.params, self.layout, self.loss_code, X, Y,
                                        sample_weight, rows, self.evaluation_workspace)

    @property
    def learning_rate(self):
        """The learning rate of the next steps (a schedule changes it per epoch)."""
        return self.hyperparams[LEARNING_RATE]

    @learning_rate.setter
    def learning_rate(self, double value):
        self.hyperparams[LEARNING_RATE] = value

    def run(self, const Py_ssize_t[::1] order, Py_ssize_t start, Py_ssize_t stop):
        """Train on the rows ``X[order[start:stop]]``, one step per batch.

        Returns
        -------
        loss_sum : float
            Sum over the rows kept of the loss measured before their step
            (with weights, of w_i times it).
        n_correct : int, or float with weights
            Those rows classified correctly by the same forward passes (with
            weights, the sum of their weights).
        rows_done : int
            Rows whose steps were kept (a skipped batch of weight 0 counts
            as kept): ``stop - start``, or fewer when training diverged;
            ``-r`` when the last step of the previous run that took one had
            to be undone as well (``r`` rows from that step's batch on).
        """
        cdef Py_ssize_t r, n_rows = self.n_rows, rows_done
        cdef double loss_sum = 0, correct = 0
        cdef const Py_ssize_t* current_rows
        cdef const Py_ssize_t* previous_rows = NULL
        cdef Py_ssize_t* grown
        if not 0 <= start <= stop <= order.shape[0]:
            raise ValueError("start and stop must satisfy 0 <= start <= stop <= len(order)")
        for r in range(start, stop):
            if order[r] < 0 or order[r] >= n_rows:
                raise ValueError("order holds a row index outside X")
        if stop == start:
            return 0.0, no_rows(self.sample_weight)[1], 0
        if min(self.batch_size, stop - start) > self.capacity:
            raise ValueError("a batch of this run has more rows than X: the workspace holds "
                             f"{self.capacity}")
        self.current ^= 1
        if self.row_capacity[self.current] < stop - start:
            grown = <Py_ssize_t*>PyMem_Realloc(self.rows[self.current],
                                               (stop - start) * sizeof(Py_ssize_t))
            if grown == NULL:
                self.current ^= 1
                raise MemoryError("no memory for the row order of this run")
            self.rows[self.current] = grown
            self.row_capacity[self.current] = stop - start
        memcpy(self.rows[self.current], &order[start], (stop - start) * sizeof(Py_ssize_t))
        current_rows = self.rows[self.current]
        if self.last_steps[self.current ^ 1] >= 0:
            previous_rows = self.rows[self.current ^ 1]
        self.row_counts[self.current] = stop - start
        self.rates[self.current] = self.hyperparams[LEARNING_RATE]
        self.start_steps[self.current] = self.step
        with nogil:
            if self.single:
                rows_done = train_rows(self, <float*>self.params_data, <const float*>self.X_data,
                                       <const float*>self.Y_data,
                                       <const float*>self.weights_data, <float*>self.state_data,
                                       <float*>self.grad_data, <float*>self.workspace_data,
                                       <float*>self.snapshots_data, current_rows,
                                       previous_rows, &loss_sum, &correct)
            else:
                rows_done = train_rows(self, <double*>self.params_data,
                                       <const double*>self.X_data, <const double*>self.Y_data,
                                       <const double*>self.weights_data,
                                       <double*>self.state_data, <double*>self.grad_data,
                                       <double*>self.workspace_data,
                                       <double*>self.snapshots_data, current_rows,
                                       previous_rows, &loss_sum, &correct)
        if self.last_steps[self.current] < 0:
            # No step kept: the run before stays the one whose last step an undo takes back.
            self.current ^= 1
        if self.weights_data == NULL:
            return loss_sum, <Py_ssize_t>correct, rows_done
        return loss_sum, correct, rows_done


cdef object trainer_evaluate(const floating[::1] params, const Py_ssize_t[:, ::1] layout,
                             int loss, X, const floating[:, ::1] Y, sample_weight,
                             Py_ssize_t block_rows, workspace):
    """``Trainer.evaluate`` on a dense ``X`` or on CSR rows, in ``workspace``."""
    cdef sparse_rows sparse
    cdef const floating[:, ::1] dense
    cdef const floating[::1] values
    cdef Py_ssize_t n_rows
    if is_csr(X):
        n_rows = check_csr_rows(X, _dtype(params), layout[0, N_IN], &sparse)
        values = X.data
        return evaluate_input(params, layout, loss, &values[0] if values.shape[0] else NULL,
                              &sparse, n_rows, Y, block_rows, sample_weight, workspace)
    dense = X
    return evaluate_input(params, layout, loss, &dense[0, 0] if dense.shape[0] else NULL, NULL,
                          dense.shape[0], Y, block_rows, sample_weight, workspace)


cdef void* numpy_data(array) except NULL:
    """The data pointer of a C-contiguous array (kept alive by its owner)."""
    return <void*><size_t>array.ctypes.data


cdef void take_snapshot(Trainer t, floating* snapshot, const floating* params,
                        const floating* state) noexcept nogil:
    memcpy(snapshot, params, t.n_params * sizeof(floating))
    if t.keeps_state:
        memcpy(snapshot + t.n_params, state, 2 * t.n_params * sizeof(floating))


cdef void restore_snapshot(Trainer t, const floating* snapshot, floating* params,
                           floating* state, int slot) noexcept nogil:
    memcpy(params, snapshot, t.n_params * sizeof(floating))
    if t.keeps_state:
        memcpy(state, snapshot + t.n_params, 2 * t.n_params * sizeof(floating))
    t.step = t.start_steps[slot]


cdef Py_ssize_t train_rows(Trainer t, floating* params, const floating* X, const floating* Y,
                           const floating* weights, floating* state, floating* grad,
                           floating* workspace, floating* snapshots,
                           const Py_ssize_t* current_rows, const Py_ssize_t* previous_rows,
                           double* loss_sum, double* correct) noexcept nogil:
    """``Trainer.run`` on typed pointers: the rows kept (see ``Trainer.run``).

    The steps first run unchecked (only each batch's loss is looked at), and
    one pass at the end checks that the parameters and optimizer state are
    finite. Only if something failed are the steps taken again from the
    snapshot, checking after each one, to find where it went wrong.
    """
    cdef int current = t.current, previous = t.current ^ 1
    cdef Py_ssize_t n_rows = t.row_counts[current], failed_at, keep, rows_done = 0
    cdef Py_ssize_t last_step = -1
    cdef Py_ssize_t previous_rows_count = t.row_counts[previous]
    cdef floating* snapshot = snapshots + current * 3 * t.n_params
    cdef bint loss_failed = False
    take_snapshot(t, snapshot, params, state)
    failed_at = train_batches(t, params, X, Y, weights, state, grad, workspace, current_rows,
                              n_rows, False, loss_sum, correct, &rows_done, &last_step,
                              &loss_failed)
    if failed_at < 0 and all_finite(t.n_params, params) and (
            not t.keeps_state or all_finite(2 * t.n_params, state)):
        t.last_steps[current] = last_step
        return rows_done
    if failed_at != 0:
        # Some step went wrong: take them again, checking each, to find it.
        restore_snapshot(t, snapshot, params, state, current)
        loss_sum[0] = 0
        correct[0] = 0
        failed_at = train_batches(t, params, X, Y, weights, state, grad, workspace,
                                  current_rows, n_rows, True, loss_sum, correct, &rows_done,
                                  &last_step, &loss_failed)
        if failed_at < 0:           # cannot happen: the same operations, the same values
            t.last_steps[current] = last_step
            return rows_done
    if not loss_failed:
        keep = failed_at            # undo the step that made a value non-finite
    elif last_step >= 0:
        keep = last_step            # undo the step whose result gave that loss
    elif previous_rows != NULL:
        # No step of this run came before: the step to undo is the previous run's last.
        restore_snapshot(t, snapshots + previous * 3 * t.n_params, params, state, previous)
        t.hyperparams[LEARNING_RATE], t.rates[previous] = t.rates[previous], t.rates[current]
        keep = t.last_steps[previous]
        loss_sum[0] = 0
        correct[0] = 0
        train_batches(t, params, X, Y, weights, state, grad, workspace, previous_rows, keep,
                      False, loss_sum, correct, &rows_done, &last_step, &loss_failed)
        t.hyperparams[LEARNING_RATE], t.rates[previous] = t.rates[previous], t.hyperparams[LEARNING_RATE]
        loss_sum[0] = 0
        correct[0] = 0
        t.row_counts[current] = 0   # nothing of this run was kept
        t.last_steps[current] = -1
        t.row_counts[previous] = keep
        t.last_steps[previous] = last_step
        return keep - previous_rows_count
    else:
        keep = failed_at            # no step was taken before it (the fit's first): none to undo
    restore_snapshot(t, snapshot, params, state, current)
    loss_sum[0] = 0
    correct[0] = 0
    train_batches(t, params, X, Y, weights, state, grad, workspace, current_rows, keep, False,
                  loss_sum, correct, &rows_done, &last_step, &loss_failed)
    t.row_counts[current] = keep
    t.last_steps[current] = last_step
    return keep


cdef Py_ssize_t train_batches(Trainer t, floating* params, const floating* X,
                              const floating* Y, const floating* weights, floating* state,
                              floating* grad, floating* workspace, const Py_ssize_t* order,
                              Py_ssize_t n_rows, bint checked, double* loss_sum,
                              double* correct, Py_ssize_t* rows_done, Py_ssize_t* last_step,
                              bint* loss_failed) noexcept nogil:
    """One step per batch of ``X[order[:n_rows]]`` (none for a batch of weight 0).

    Returns -1, or the first row of the batch where training must stop: its
    loss was not finite (``loss_failed``; judged in the network's precision,
    since a float32 loss that only double can hold goes with overflowed
    float32 deltas; its step is not taken), or, when ``checked``, its step
    made a parameter or the optimizer state inf or NaN. ``rows_done`` counts
    the rows whose steps were taken (or skipped), ``last_step`` is where the
    batch of the last step taken starts (-1: none).
    """
    cdef Py_ssize_t start = 0, rows, r, n_in = t.n_in
    cdef double batch_loss, batch_correct, weight_sum
    cdef const floating* inputs
    cdef const floating* next_inputs
    cdef floating* gathered = workspace  # the slot of layer 0 (dense X only)
    # One row at a time with plain SGD, each step also computes the next row's
    # first product (backward_batch's x_next), which the next forward pass uses.
    cdef bint first_done = False
    cdef cymlp_step step
    # Sparse rows are read in place, in the order's rows; the one-row paths
    # fused into the first layer's weights (x_next, row_optimizer) need a
    # dense x, so a sparse X takes the scatter of backward_batch instead.
    cdef sparse_rows batch = t.csr
    cdef const sparse_rows* sparse = &batch if t.sparse else NULL
    rows_done[0] = 0
    last_step[0] = -1
    loss_failed[0] = False
    while start < n_rows:
        rows = min(t.batch_size, n_rows - start)
        weight_sum = rows
        if weights != NULL:
            weight_sum = weight_total(weights, order + start, rows)
            if weight_sum == 0:
                start += rows
                rows_done[0] = start
                first_done = False
                continue
        if sparse != NULL:
            batch.rows = order + start
            inputs = X
        elif rows == 1:
            inputs = X + order[start] * n_in
        else:
            for r in range(rows):
                memcpy(gathered + r * n_in, X + order[start + r] * n_in, n_in * sizeof(floating))
            inputs = gathered
        batch_correct = 0
        batch_loss = forward_loss(params, t.layout_data, t.n_layers, t.loss_code, inputs,
                                  sparse, Y, weights, order + start, rows, weight_sum,
                                  workspace, t.capacity, &batch_correct, first_done)
        if not isfinite(<floating>batch_loss):
            loss_failed[0] = True
            return start
        t.step += 1
        if t.plain_sgd:
            next_inputs = NULL
            if t.batch_size == 1 and start + 1 < n_rows and sparse == NULL:
                next_inputs = X + order[start + 1] * n_in
            backward_from_loss(params, t.layout_data, t.n_layers, inputs, sparse, rows,
                               workspace, t.capacity, NULL, t.hyperparams[LEARNING_RATE],
                               next_inputs, NULL, NULL, 0)
            first_done = next_inputs != NULL
        elif rows == 1 and sparse == NULL:
            # The optimizer's step taken layer by layer, in the backward pass.
            fill_step(t.hyperparams, t.optimizer_code, t.step, t.single, &step)
            backward_from_loss(params, t.layout_data, t.n_layers, inputs, sparse, rows,
                               workspace, t.capacity, NULL, 0.0, NULL, &step, state,
                               t.n_params)
        else:
            backward_from_loss(params, t.layout_data, t.n_layers, inputs, sparse, rows,
                               workspace, t.capacity, grad, 0.0, NULL, NULL, NULL, 0)
            optimizer_step(t.optimizer_code, t.hyperparams, params, grad, state, t.n_params,
                           t.step)
        if checked and not (all_finite(t.n_params, params) and (
                not t.keeps_state or all_finite(2 * t.n_params, state))):
            return start
        loss_sum[0] += batch_loss
        correct[0] += batch_correct
        last_step[0] = start
        start += rows
        rows_done[0] = start
    return -1
