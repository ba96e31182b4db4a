"""The documentation site builds without a warning, and has its pages.

Runs where the docs extra is installed (``pip install ".[docs]"``: Sphinx,
numpydoc and MyST); skips cleanly elsewhere. CI builds the site in a step
of its own as well.
"""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
DOCS_MODULES = ("sphinx", "myst_parser", "numpydoc")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(any(importlib.util.find_spec(name) is None for name in DOCS_MODULES),
                       reason="the docs extra (Sphinx, numpydoc, MyST) is not installed"),
    pytest.mark.skipif(not os.path.isfile(os.path.join(DOCS, "conf.py")),
                       reason="no docs/ beside the tests (an installed copy of the tests)"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once with warnings as errors; its output directory."""
    pytest.importorskip("sklearn")          # cymlp.sklearn is documented from the real thing
    out = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / ".doctrees"), DOCS, str(out / "html")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return out / "html"


def test_the_site_has_its_pages(site):
    for page in ("index", "getting-started", "api", "tutorial", "benchmarks", "performance",
                 "model-options", "saved-models", "sklearn"):
        assert (site / f"{page}.html").is_file(), page
    assert (site / "_images" / "demo.png").is_file()


def test_the_api_page_documents_the_public_api(site):
    api = (site / "api.html").read_text(encoding="utf-8")
    for name in ("cymlp.MLP", "cymlp.MLP.fit", "cymlp.load", "cymlp.History",
                 "cymlp.TrainingDiverged", "cymlp.optim.SGD", "cymlp.schedules.StepLR",
                 "cymlp.datasets.letters", "cymlp.tutorial.f_forward",
                 "cymlp.sklearn.MLPClassifier", "cymlp.plot.plot_history",
                 "cymlp.torch.to_torch", "cymlp.dask.fit_incremental"):
        assert f'id="{name}"' in api, name


def test_the_readme_sections_are_included(site):
    tutorial = (site / "tutorial.html").read_text(encoding="utf-8")
    assert "The tutorial, step by step" in tutorial and "back_prop" in tutorial
    benchmarks = (site / "benchmarks.html").read_text(encoding="utf-8")
    assert "Against the tools an expert would reach for" in benchmarks
    start = re.sub(r"<[^>]+>", "", (site / "getting-started.html").read_text(encoding="utf-8"))
    assert "Quickstart" in start and "X, Y = datasets.letters()" in start
