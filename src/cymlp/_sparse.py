"""Sparse inputs: any ``scipy.sparse`` matrix, converted once to CSR rows.

The kernels read a sparse ``X`` as three flat arrays (``CSRRows``): the
first layer's product sums ``x_ij W[j]`` over the stored entries of each
row, and its weight gradient is scattered into the rows of ``W`` those
entries name. Nothing densifies the data set: a batch's rows are read in
place, in the order the epoch's shuffle gives.
"""

import numpy as np

from ._params import block_rows
from ._validation import all_finite


def is_sparse(X):
    """Whether ``X`` is a scipy.sparse matrix or array (scipy imported only if it is loaded)."""
    import sys
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


class CSRRows:
    """Rows of a sparse matrix in compressed sparse row form, as the kernels read them.

    Row ``i`` holds the values ``data[indptr[i]:indptr[i + 1]]`` in the
    columns ``indices[indptr[i]:indptr[i + 1]]``; the columns of a row need
    not be sorted, and a column stored twice counts twice (scipy's rule).

    Attributes
    ----------
    data : ndarray of shape (n_stored,), float32 or float64
    indices : ndarray of shape (n_stored,), intp
    indptr : ndarray of shape (n_rows + 1,), intp
    shape : tuple (n_rows, n_features)
    """

    __slots__ = ("data", "indices", "indptr", "shape")

    def __init__(self, data, indices, indptr, shape):
        self.data, self.indices, self.indptr = data, indices, indptr
        self.shape = (int(shape[0]), int(shape[1]))

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return 2

    def __len__(self):
        return self.shape[0]

    @property
    def nbytes(self):
        return self.data.nbytes + self.indices.nbytes + self.indptr.nbytes

    def __getitem__(self, rows):
        """``X[rows]`` for an integer index array or a boolean mask: new ``CSRRows``."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return self.take(rows)

    def take(self, rows):
        """The rows ``rows`` (an integer index array) as new ``CSRRows``."""
        rows = np.asarray(rows, dtype=np.intp)
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        lengths = stops - starts
        indptr = np.zeros(rows.shape[0] + 1, dtype=np.intp)
        np.cumsum(lengths, out=indptr[1:])
        # Positions of the kept entries: each row's run of stored positions.
        positions = (np.arange(indptr[-1], dtype=np.intp)
                     - np.repeat(indptr[:-1] - starts, lengths))
        return CSRRows(self.data[positions], self.indices[positions], indptr,
                       (rows.shape[0], self.shape[1]))

    def to_scipy(self):
        """The same rows as a ``scipy.sparse.csr_matrix`` (sharing the arrays)."""
        from scipy.sparse import csr_matrix
        return csr_matrix((self.data, self.indices, self.indptr), shape=self.shape, copy=False)

    def toarray(self):
        """The rows as a dense array (for tests and small data only)."""
        return self.to_scipy().toarray()

    def __repr__(self):
        return (f"CSRRows(shape={self.shape}, stored={self.data.shape[0]}, "
                f"dtype={self.data.dtype})")


def as_csr_rows(X, name, dtype, n_columns=None, what="features"):
    """A scipy.sparse ``X`` as finite ``CSRRows`` of ``dtype`` (converted once).

    CSC, COO and the other formats are converted to CSR; the values are cast
    to ``dtype`` and the index arrays to intp. The result shares no memory
    with ``X`` that the kernels could write (they never write inputs).
    Raises ``ValueError`` naming ``name`` for an empty matrix, the wrong
    number of columns, or a non-finite stored value.
    """
    if isinstance(X, CSRRows):
        csr = X.to_scipy()
    else:
        csr = X.tocsr() if X.format != "csr" else X
    shape = csr.shape
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D sparse matrix of shape (n_samples, n_{what}); "
                         f"got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} must not be empty; got shape {shape}")
    if n_columns is not None and shape[1] != n_columns:
        raise ValueError(f"{name} must have {n_columns} {what} (columns) for this network; "
                         f"got shape {shape}")
    kind = csr.dtype.kind
    if kind == "b" or kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers (integer or float); "
                        f"got a sparse matrix of dtype {csr.dtype}")
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.intp)
    if indptr.shape[0] != shape[0] + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise ValueError(f"{name} is a malformed sparse matrix: its row pointers "
                         "(indptr) must start at 0 and never decrease")
    n_stored = int(indptr[-1])
    indices = np.ascontiguousarray(csr.indices[:n_stored], dtype=np.intp)
    if indices.shape[0] != n_stored or csr.data.shape[0] < n_stored:
        raise ValueError(f"{name} is a malformed sparse matrix: indptr names "
                         f"{n_stored} stored entries; indices or data hold fewer")
    if n_stored and (indices.min() < 0 or indices.max() >= shape[1]):
        raise ValueError(f"{name} is a malformed sparse matrix: a column index lies "
                         f"outside 0..{shape[1] - 1}")
    with np.errstate(over="ignore", invalid="ignore"):
        data = np.ascontiguousarray(csr.data[:n_stored], dtype=dtype)
    if not all_finite(data):
        if csr.data.dtype != data.dtype and all_finite(np.asarray(csr.data[:n_stored], float)):
            raise ValueError(f"{name} holds values too large for {np.dtype(dtype).name} "
                             f"(largest magnitude {np.abs(csr.data[:n_stored]).max():g})")
        raise ValueError(f"{name} must contain only finite values; it holds NaN or inf")
    return CSRRows(data, indices, indptr, shape)


def take_rows(X, rows):
    """``X[rows]`` as a new C-contiguous array, or new ``CSRRows``."""
    return X.take(rows) if isinstance(X, CSRRows) else np.ascontiguousarray(X[rows])


def largest_magnitude(X):
    """max |x| over the entries of a dense array or ``CSRRows`` (0 when none is stored)."""
    values = X.data if isinstance(X, CSRRows) else X
    if not values.size:
        return 0.0
    # Two reductions, no temporary |X|: X may be a memmap larger than memory.
    return float(max(values.max(), -values.min()))


# The kernels take a sparse X as its three arrays (``forward_csr`` and the
# others); these choose the dense or the sparse kernel, once for every caller.

def inference_rows(layout, X):
    """Rows per block of inference on ``X``: no input slot in the workspace when sparse."""
    return block_rows(layout, X.shape[0], sparse=isinstance(X, CSRRows))


def forward(kernels, params, layout, X, out, rows):
    """``kernels.forward`` on a dense X, ``kernels.forward_csr`` on ``CSRRows``."""
    if isinstance(X, CSRRows):
        return kernels.forward_csr(params, layout, X.data, X.indices, X.indptr, out, rows)
    return kernels.forward(params, layout, X, out, rows)


def evaluate(kernels, params, layout, loss, X, Y, rows, sample_weight=None):
    """``kernels.evaluate`` on a dense X, ``kernels.evaluate_csr`` on ``CSRRows``."""
    if isinstance(X, CSRRows):
        return kernels.evaluate_csr(params, layout, loss, X.data, X.indices, X.indptr, Y,
                                    rows, sample_weight)
    return kernels.evaluate(params, layout, loss, X, Y, rows, sample_weight)


def loss_and_grad(kernels, params, layout, loss, X, Y, grad, sample_weight=None):
    """``kernels.loss_and_grad`` on a dense X, ``kernels.loss_and_grad_csr`` on ``CSRRows``."""
    if isinstance(X, CSRRows):
        return kernels.loss_and_grad_csr(params, layout, loss, X.data, X.indices, X.indptr,
                                         Y, grad, sample_weight)
    return kernels.loss_and_grad(params, layout, loss, X, Y, grad, sample_weight)
