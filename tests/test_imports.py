"""What importing cymlp loads: only what it needs, and the rest on first use.

Each check runs in a fresh interpreter, so that nothing this test session
has imported already counts. (The compiled kernels load SciPy's BLAS only
when a product needs it: tests/test_one_row_training.py checks that.)
"""

import json
import os
import subprocess
import sys

import pytest

import cymlp

# Never loaded by ``import cymlp`` or ``from cymlp.tutorial import *``.
# (numpy.typing is: MLP's annotations name its ArrayLike, for get_type_hints.)
NOT_ON_IMPORT = ("scipy", "scipy.linalg", "scipy.special", "threadpoolctl", "numpy.random",
                 "cymlp.datasets", "cymlp._kernels", "cymlp._numpy_kernels",
                 "cymlp._io", "cymlp.sklearn", "cymlp.plot", "cymlp.cli", "cymlp.torch",
                 "cymlp.dask", "cymlp.onnx", "sklearn", "matplotlib", "torch", "dask",
                 "distributed", "onnx", "onnxruntime", "skl2onnx")


def loaded_after(code, backend=None):
    """Which of NOT_ON_IMPORT are in sys.modules after running ``code`` in a new process."""
    script = (f"import sys\n{code}\nimport json\n"
              f"print(json.dumps([name for name in {NOT_ON_IMPORT!r} if name in sys.modules]))")
    env = dict(os.environ)
    if backend is not None:
        env["CYMLP_BACKEND"] = backend
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_import_cymlp_loads_no_backend_scipy_threadpoolctl_or_data_sets():
    assert loaded_after("import cymlp") == []


def test_the_tutorial_import_loads_no_more():
    assert loaded_after("from cymlp.tutorial import *") == []


def test_submodules_load_on_first_use():
    code = ("import cymlp\n"
            "assert 'cymlp.datasets' not in sys.modules\n"
            "X, Y = cymlp.datasets.letters()\n"
            "from cymlp import datasets, optim, schedules\n"
            "assert datasets is cymlp.datasets and X.shape == (3, 30)\n"
            "assert optim.SGD and schedules.StepLR\n")
    assert "cymlp.datasets" in loaded_after(code)


def test_public_names_are_listed_and_reachable():
    names = dir(cymlp)
    for name in cymlp.__all__:
        assert name in names
        assert getattr(cymlp, name) is not None
    assert cymlp.datasets.letters()[0].shape == (3, 30)
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        cymlp.nonexistent


def test_training_a_small_network_loads_no_threadpoolctl(backend):
    """No product of a 30-5-3 network at batch size 1 reaches BLAS: nothing to limit.

    The NumPy backend then never loads SciPy's linear algebra either; the
    compiled one loads it with itself for now (the kernels' own import).
    """
    code = ("import numpy as np, cymlp\n"
            "X, Y = np.random.default_rng(0).random((3, 30)), np.eye(3)\n"
            "net = cymlp.MLP([30, 5, 3], seed=0)\n"
            "net.fit(X, Y, epochs=20, batch_size=1, learning_rate=1.0)\n"
            "assert net.history.epochs == 20\n")
    loaded = loaded_after(code, backend)
    assert "threadpoolctl" not in loaded
    if backend == "numpy":
        assert "scipy.linalg" not in loaded
    assert "cymlp.datasets" not in loaded


def test_type_hints_of_the_public_api_resolve():
    """The annotations are strings (``from __future__ import annotations``);
    every name they use must exist at run time (Sphinx, IDEs, type checkers)."""
    import typing
    for function in (cymlp.MLP.__init__, cymlp.MLP.fit, cymlp.MLP.predict,
                     cymlp.MLP.partial_fit, cymlp.MLP.loss_and_grad):
        hints = typing.get_type_hints(function)
        assert "return" in hints or function is cymlp.MLP.__init__
