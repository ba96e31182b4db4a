"""The peers of the speed suite: other ways to train and run the same networks.

Each module is one peer and needs its own library (numba, JAX, PyTorch,
scikit-learn; NumPy for the tutorial's code); importing it raises
ImportError when that library is not installed. Every module exposes

``train_runner(spec, X, Y, start)``
    A callable that runs one epoch of ``spec`` (a ``workloads.Workload``)
    over the rows of ``X`` and ``Y`` in order, and returns the parameters
    after it as ``[(W, b), ...]`` with ``W`` of shape ``(n_in, n_out)``, in
    the library's own array type. ``start`` is the same list of NumPy arrays
    (the weights of ``cymlp.MLP(seed=0)``), copied, never changed. Raises
    ``NotImplementedError`` for a workload the peer does not run.

``predict_runner(X, start)`` (where the peer has one)
    A callable that returns the outputs of the relu/softmax network
    ``start`` for the rows of ``X``.

Compiling (numba, JAX, torch.compile) happens inside these functions, so
that the callables time the work alone. ``test_peer_agreement.py`` checks
that every peer computes the weights cymlp computes.
"""
