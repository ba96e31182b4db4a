"""The one error type ``cymlp`` commands report as the user's mistake.

``main`` prints a ``CLIError`` as one line on stderr and exits with status 2;
every other exception is a bug and shows its traceback. The commands raise
``CLIError`` from their own checks, and turn into it only the exceptions
that cymlp documents for bad input, at the calls that take that input
(``reported``), so that a ``ValueError`` from deep inside a fit is never
mistaken for a bad option.
"""

import os
from contextlib import contextmanager

from .._backend import resolve_backend


class CLIError(Exception):
    """A problem the user caused: an option, a data or model file, the installation."""


# What cymlp's public API and the operating system raise for input they refuse;
# each message names the argument or the file.
BAD_ARGUMENT = (ValueError, TypeError)  # argument checks, e.g. MLP.fit(validation_split=1.5)
MISSING_BACKEND = (ImportError,)        # a backend asked for by name that cannot be loaded
BAD_MODEL_FILE = (ValueError,)          # cymlp.load: not a valid cymlp model file
BAD_FILE = (OSError,)                   # a file the user named: missing, unreadable, unwritable
MISSING_EXTRA = (ImportError,)          # an optional extra (e.g. onnx) that is not installed


@contextmanager
def reported(*errors, prefix="", about=None):
    """Inside the block, re-raise ``errors`` as ``CLIError`` (message after ``prefix``).

    With ``about`` (argument names), only errors whose message starts with one
    of them: cymlp's argument checks name the argument first.
    """
    try:
        yield
    except errors as error:
        if about is not None and not str(error).startswith(about):
            raise
        raise CLIError(f"{prefix}{error_text(error, named=bool(prefix))}") from error


def error_text(error, named=False):
    """The message of ``error``; an operating-system error's in words, without errno.

    ``named``: the caller's message already names the file, so it is not repeated.
    """
    if isinstance(error, OSError) and error.strerror:
        if named or not error.filename:
            return error.strerror
        return f"{error.filename}: {error.strerror}"
    return str(error)


def check_output_file(path, flag, example):
    """Fail now, before any work, if ``path`` (the value of ``flag``) cannot be written."""
    if os.path.isdir(path):
        raise CLIError(f"{flag}: cannot write {path!r}: it is a directory; name a file, "
                       f"e.g. {flag} {example}")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise CLIError(f"{flag}: cannot write {path!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(f"{flag}: cannot write {path!r}: the folder {folder!r} is not writable")


def check_backend(name):
    """Fail now if backend ``name`` (None: ``$CYMLP_BACKEND``, else auto) cannot be used."""
    with reported(ValueError, *MISSING_BACKEND):
        resolve_backend(name)
