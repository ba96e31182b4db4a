"""The README's examples are tests: every Python block runs, every shell session is reproduced.

Python blocks run in order, in one namespace (as a reader pasting them one
after another would), in a temporary folder. Shell sessions (``text``
blocks whose lines start with ``$ ``) are run with bash in a folder holding
the data they name, and their output is compared with what the README
shows: a line ``...`` stands for any number of lines, timings and progress
bars are not compared, and the backend's name is whatever backend runs.

An HTML comment right before a block can say how to run it:

- ``<!-- readme-test: file NAME -->``: the block is a script; it is written
  to NAME (a later session runs it);
- ``<!-- readme-test: replace OLD => NEW -->``: OLD is replaced by NEW in the
  block before it runs (a scheduler address becomes a local cluster, a
  large size a smaller one), so the rest of the block runs as shown.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")


def readme_blocks():
    """(language, code, directives, line number) of every fenced block, in order."""
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks, directives, index = [], [], 0
    while index < len(lines):
        line = lines[index]
        match = DIRECTIVE.search(line)
        if match:
            directives.append(match.group(1))
        elif line.startswith("```"):
            language, start = line[3:].strip(), index + 1
            index += 1
            while not lines[index].startswith("```"):
                index += 1
            blocks.append((language, "\n".join(lines[start:index]) + "\n", directives, start))
            directives = []
        elif line.strip():
            directives = []     # a directive belongs to the block right after it
        index += 1
    return blocks


def apply(code, directives):
    """The block's code after its ``replace`` directives; its ``file`` name or None."""
    target = None
    for directive in directives:
        kind, _, rest = directive.partition(" ")
        if kind == "replace":
            old, new = (part.strip() for part in rest.split("=>"))
            assert old in code, f"readme-test replace: {old!r} is not in the block"
            code = code.replace(old, new)
        elif kind == "file":
            target = rest.strip()
        else:
            raise AssertionError(f"unknown readme-test directive {directive!r}")
    return code, target


BLOCKS = [block for block in readme_blocks()
          if block[0] == "python" or (block[0] == "text" and block[1].startswith("$ "))]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The folder the examples run in, with the data files they name."""
    folder = tmp_path_factory.mktemp("readme")
    iris_csv(folder / "iris.csv")
    return folder


def iris_csv(path):
    """iris.csv from scikit-learn's copy, with the README's column names."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    with open(path, "w", encoding="utf-8") as file:
        file.write("sepal_length,sepal_width,petal_length,petal_width,species\n")
        for row, label in zip(iris.data, iris.target):
            file.write(",".join(f"{v:g}" for v in row) + f",{iris.target_names[label]}\n")


_NAMESPACE = {"__name__": "__readme__"}


@pytest.mark.parametrize("language, code, directives, line", BLOCKS,
                         ids=[f"{block[0]}-line{block[3]}" for block in BLOCKS])
def test_readme_block(language, code, directives, line, workdir, monkeypatch):
    # One test per block, in the README's order: a session may make a file a
    # later Python block reads, and the other way round.
    if language == "python":
        run_python(code, directives, line, workdir, monkeypatch)
    else:
        reproduce_session(code, directives, line, workdir)


def run_python(code, directives, line, workdir, monkeypatch):
    code, target = apply(code, directives)
    if target is not None:
        (workdir / target).write_text(code, encoding="utf-8")
        return
    pytest.importorskip("sklearn")   # several blocks need it; CI has every extra
    monkeypatch.chdir(workdir)
    exec(compile(code, f"README.md:{line}", "exec"), _NAMESPACE)


def normalise(line):
    """A line of output as compared: the backend's name and trailing blanks left out."""
    line = re.sub(r"\b(cython|numpy)\b(?=[',)]| \(available)", "BACKEND", line.rstrip())
    return line


def matches(expected, actual):
    """Whether ``actual`` lines match ``expected`` ones, ``...`` matching any number of lines."""
    if not expected:
        return not actual
    head = expected[0]
    if head.strip().startswith("..."):
        return any(matches(expected[1:], actual[start:]) for start in range(len(actual) + 1))
    return bool(actual) and normalise(actual[0]) == normalise(head) and matches(expected[1:],
                                                                             actual[1:])


def sessions(text):
    """(command, expected output lines) of each ``$ `` command in a block."""
    result, command, output = [], None, []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("$ "):
            if command is not None:
                result.append((command, output))
            command, output = line[2:], []
            while command.endswith("\\"):
                index += 1
                command = command[:-1] + lines[index].strip()
        elif line.strip():
            output.append(line)
        index += 1
    if command is not None:
        result.append((command, output))
    return result


def reproduce_session(text, directives, line, workdir):
    pytest.importorskip("sklearn")
    command_dir = Path(sys.executable).parent
    if shutil.which("cymlp", path=str(command_dir)) is None:
        pytest.skip("the cymlp command is not installed beside this Python (pip install .)")
    env = dict(os.environ, PATH=f"{command_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               COLUMNS="200")
    for command, expected in sessions(apply(text, directives)[0]):
        result = subprocess.run(["bash", "-c", command], cwd=workdir, env=env,
                                capture_output=True, text=True, timeout=300)
        # Progress bars go to stderr and depend on timing: only the other lines count.
        errors = [text for text in result.stderr.splitlines()
                  if text.strip() and "it/s" not in text and "epoch/s" not in text
                  and not re.match(r"^\s*\d+%\|", text)]
        actual = result.stdout.splitlines() + errors
        expected = [text for text in expected if not re.match(r"^\s*\d+%\|", text)]
        if not matches(expected, actual) and matches(expected, result.stdout.splitlines()):
            actual = result.stdout.splitlines()   # a tool's own warnings on stderr aside
        assert result.returncode == 0 or any("error" in text for text in expected), (
            f"README.md:{line}: `{command}` failed:\n{result.stderr[-2000:]}")
        assert matches(expected, actual), (
            f"README.md:{line}: `{command}` printed\n" + "\n".join(actual)
            + "\n\nthe README shows\n" + "\n".join(expected))
