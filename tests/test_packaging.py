"""Packaging: one version, `cymlp --version`, the wheels and the sdist.

Some checks need the source tree (tests/ beside pyproject.toml and csrc/, as
in a clone or an unpacked sdist) and scikit-build-core, the build backend;
they skip without them. CI sets ``CYMLP_SDIST`` to the sdist it built, whose
members are then checked, and ``CYMLP_EXPECT_BACKENDS`` (``cython,numpy`` or
``numpy``) to the backends the installed wheel must have.
"""

import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import cymlp

ROOT = Path(__file__).resolve().parent.parent
IN_SOURCE_TREE = (ROOT / "pyproject.toml").is_file() and (ROOT / "csrc").is_dir()
HAVE_BACKEND = importlib.util.find_spec("scikit_build_core") is not None

needs_source_tree = pytest.mark.skipif(not IN_SOURCE_TREE, reason="not run from a source tree")
needs_backend = pytest.mark.skipif(
    not (IN_SOURCE_TREE and HAVE_BACKEND),
    reason="builds need the source tree and the build backend (scikit-build-core)")

# PEP 440, as the packaging library writes it (without local versions).
PEP440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


def pyproject_version():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]


def installed_distribution():
    """The installed cymlp distribution, if ``cymlp`` is imported from it."""
    try:
        distribution = importlib.metadata.distribution("cymlp")
    except importlib.metadata.PackageNotFoundError:
        return None
    init = Path(distribution.locate_file("cymlp/__init__.py")).resolve()
    return distribution if init == Path(cymlp.__file__).resolve() else None


def run(args, env=None, cwd=None, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


# ---------------------------------------------------------------- one version

def test_version_is_a_pep440_version():
    assert isinstance(cymlp.__version__, str)
    assert PEP440.match(cymlp.__version__), cymlp.__version__
    assert "__version__" in cymlp.__all__ and "__version__" in dir(cymlp)


def test_version_is_the_installed_metadata():
    distribution = installed_distribution()
    if distribution is None:
        pytest.skip("cymlp is not imported from an installed distribution")
    assert cymlp.__version__ == distribution.version


@needs_source_tree
def test_version_is_written_once_in_pyproject():
    """pyproject.toml states the version; the package and the citation agree."""
    version = pyproject_version()
    assert cymlp.__version__ == version
    init = (ROOT / "src" / "cymlp" / "__init__.py").read_text(encoding="utf-8")
    assert version not in init, "the version is written in __init__.py too"
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert f'version: "{version}"' in citation
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(version)}\]", changelog, re.MULTILINE)
    assert re.search(r"^## \[Unreleased\]", changelog, re.MULTILINE)


@needs_source_tree
def test_a_source_tree_reads_its_own_pyproject(tmp_path):
    """PYTHONPATH=src: the version of the tree, not of some installed copy."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CYMLP_BACKEND": "numpy"}
    result = run([sys.executable, "-c", "import cymlp; print(cymlp.__version__, cymlp.__file__)"],
                 env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    version, path = result.stdout.split()
    assert Path(path).resolve() == (ROOT / "src" / "cymlp" / "__init__.py").resolve()
    assert version == pyproject_version()


def test_importing_cymlp_does_not_look_the_version_up():
    """The metadata is read on first use of ``__version__``, not by ``import cymlp``."""
    code = ("import sys, cymlp\n"
            "assert 'importlib.metadata' not in sys.modules, 'importlib.metadata loaded'\n"
            "assert '__version__' not in vars(cymlp)\n"
            "print(cymlp.__version__)\n")
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == cymlp.__version__


# ---------------------------------------------------------------- cymlp --version

def cymlp_command():
    script = Path(sys.executable).with_name("cymlp" + (".exe" if os.name == "nt" else ""))
    return [str(script)] if script.exists() else [sys.executable, "-m", "cymlp"]


@pytest.mark.parametrize("chosen", ["auto", "numpy"])
def test_version_option_prints_version_and_backend(chosen):
    env = {**os.environ, "CYMLP_BACKEND": chosen}
    result = run(cymlp_command() + ["--version"], env=env)
    assert result.returncode == 0, result.stderr
    available = cymlp.available_backends()
    backend = chosen if chosen != "auto" else available[0]
    missing = "" if "cython" in available else "; the compiled backend is not available"
    assert result.stdout == f"cymlp {cymlp.__version__} (backend: {backend}{missing})\n"
    assert result.stderr == ""


# ---------------------------------------------------------------- the installed wheel

def test_the_wheel_tag_matches_the_extension():
    """A wheel without the extension is py3-none-any; one with it is tagged for its platform."""
    distribution = installed_distribution()
    if distribution is None or distribution.read_text("WHEEL") is None:
        pytest.skip("cymlp is not installed from a wheel")
    tags = re.findall(r"^Tag: (\S+)$", distribution.read_text("WHEEL"), re.MULTILINE)
    has_extension = any(Path(str(file)).name.startswith("_kernels.")
                        for file in distribution.files or ())
    if has_extension:
        assert tags and all(not tag.endswith("-none-any") for tag in tags), tags
    else:
        assert tags == ["py3-none-any"], tags


def test_expected_backends():
    """CI states which backends the wheel it installed must have."""
    expected = os.environ.get("CYMLP_EXPECT_BACKENDS")
    if not expected:
        pytest.skip("CYMLP_EXPECT_BACKENDS is not set")
    assert cymlp.available_backends() == expected.split(","), cymlp.available_backends()


def test_without_the_extension_cymlp_warns_once_and_runs_on_numpy():
    if "cython" in cymlp.available_backends():
        pytest.skip("the compiled backend is installed")
    code = ("import warnings, numpy as np, cymlp\n"
            "warnings.simplefilter('always')\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    X, Y = np.eye(3), np.eye(3)\n"
            "    for seed in range(3):\n"
            "        net = cymlp.MLP([3, 4, 3], seed=seed)\n"
            "        net.fit(X, Y, epochs=2)\n"
            "print(net.backend, sum(issubclass(w.category, cymlp.BackendWarning) "
            "for w in caught))\n")
    env = {key: value for key, value in os.environ.items() if key != "CYMLP_BACKEND"}
    result = run([sys.executable, "-c", code], env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "1"]


# ---------------------------------------------------------------- building

def build_wheel(tmp_path, **env):
    """Build a wheel of the source tree with scikit-build-core, in a subprocess."""
    out = tmp_path / "dist"
    out.mkdir()
    code = ("import sys\nfrom scikit_build_core.build import build_wheel\n"
            "print(build_wheel(sys.argv[1]))\n")
    result = run([sys.executable, "-c", code, str(out)], env={**os.environ, **env}, cwd=ROOT,
                 timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return out / result.stdout.strip().splitlines()[-1], result.stdout + result.stderr


def assert_pure(wheel):
    assert wheel.name == f"cymlp-{pyproject_version()}-py3-none-any.whl", wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        wheel_info = archive.read(f"cymlp-{pyproject_version()}.dist-info/WHEEL").decode()
    assert "cymlp/__init__.py" in names and "cymlp/_numpy_kernels.py" in names
    assert not [name for name in names if re.search(r"\.(so|pyd|dylib|dll)$", name)], names
    assert "Root-Is-Purelib: true" in wheel_info and "Tag: py3-none-any" in wheel_info


@needs_backend
def test_pure_python_wheel_on_request(tmp_path):
    wheel, _ = build_wheel(tmp_path, CYMLP_PUREPYTHON="1")
    assert_pure(wheel)


@needs_backend
def test_a_failed_compile_gives_the_pure_python_wheel(tmp_path):
    """No usable C compiler: CMake fails, and the build retries without it."""
    wheel, log = build_wheel(tmp_path, CC="false", CXX="false")
    assert "retrying due to override" in log, log
    assert "pure-Python wheel" in log, log
    assert_pure(wheel)


@needs_backend
def test_a_failed_compile_fails_when_the_extension_is_required(tmp_path):
    out = tmp_path / "dist"
    out.mkdir()
    code = "import sys\nfrom scikit_build_core.build import build_wheel\nbuild_wheel(sys.argv[1])\n"
    env = {**os.environ, "CC": "false", "CXX": "false", "CYMLP_REQUIRE_COMPILED": "1"}
    result = run([sys.executable, "-c", code, str(out)], env=env, cwd=ROOT, timeout=600)
    assert result.returncode != 0
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------- the sdist

def sdist_path(tmp_path):
    """CI's sdist (CYMLP_SDIST), or one built here from the source tree."""
    given = os.environ.get("CYMLP_SDIST")
    if given:
        return Path(given)
    if not (IN_SOURCE_TREE and HAVE_BACKEND):
        pytest.skip("no sdist: set CYMLP_SDIST, or run from a source tree with scikit-build-core")
    code = ("import sys\nfrom scikit_build_core.build import build_sdist\n"
            "print(build_sdist(sys.argv[1]))\n")
    result = run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path / result.stdout.strip().splitlines()[-1]


def expected_sdist_members(version):
    """What a build and the test suite need, from the source tree."""
    top = ["pyproject.toml", "CMakeLists.txt", "README.md", "CHANGELOG.md", "CITATION.cff",
           "LICENSE", "PKG-INFO", "benchmarks/tutorial_process.py"]
    patterns = ["src/cymlp/**/*.py", "src/cymlp/py.typed", "csrc/*.pyx", "csrc/*.pxd",
                "csrc/*.h", "tests/*.py"]
    files = set(top)
    for pattern in patterns:
        files |= {path.relative_to(ROOT).as_posix() for path in ROOT.glob(pattern)
                  if "__pycache__" not in path.parts}
    return {f"cymlp-{version}/{name}" for name in files}


def test_sdist_holds_what_a_build_needs_and_nothing_else(tmp_path):
    sdist = sdist_path(tmp_path)
    with tarfile.open(sdist) as archive:
        members = {member.name for member in archive.getmembers() if member.isfile()}
        pkg_info = archive.extractfile(next(name for name in sorted(members)
                                            if name.endswith("/PKG-INFO"))).read().decode()
    version = re.search(r"^Version: (\S+)$", pkg_info, re.MULTILINE).group(1)
    assert sdist.name == f"cymlp-{version}.tar.gz"
    assert version == cymlp.__version__
    prefix = f"cymlp-{version}/"
    assert all(name.startswith(prefix) for name in members), members
    relative = {name[len(prefix):] for name in members}
    unwanted = [name for name in relative
                if re.match(r"(\.ci|\.git|docs|build|dist|\.github)/", name)
                or (name.startswith("benchmarks/") and name != "benchmarks/tutorial_process.py")
                or re.search(r"(\.so|\.pyd|\.pyc|\.c|\.html)$|__pycache__|\.egg-info", name)]
    assert unwanted == []
    for needed in ("pyproject.toml", "CMakeLists.txt", "csrc/_kernels.pyx", "csrc/loops.h",
                   "src/cymlp/__init__.py", "src/cymlp/_numpy_kernels.py", "tests/conftest.py",
                   "README.md", "CHANGELOG.md", "CITATION.cff"):
        assert needed in relative, needed
    if IN_SOURCE_TREE:
        assert members == expected_sdist_members(version)
