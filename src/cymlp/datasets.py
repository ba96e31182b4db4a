"""Small data sets that come with cymlp: the tutorial's letters, and the rest of the alphabet.

Every letter is drawn on the tutorial's grid of 5 rows x 6 columns and
flattened row by row into 30 binary pixels. A, B and C are exactly the
tutorial's; the other 23 were drawn for cymlp to be readable and far apart:
among A-J every pair of glyphs differs in at least 5 pixels, among all 26 in
at least 4 (I and T).
"""

from typing import Tuple, Union

import numpy as np

from ._validation import check_bool, check_float, check_int, check_seed

# '#' = 1. A, B and C are the tutorial's letters, pixel for pixel.
_LETTER_ROWS = {
    "A": ("..##..", ".#..#.", "######", "#....#", "#....#"),
    "B": (".####.", ".#..#.", ".####.", ".#..#.", ".####."),
    "C": (".####.", ".#....", ".#....", ".#....", ".####."),
    "D": ("###...", "#..#..", "#...#.", "#..#..", "###..."),
    "E": ("######", "#.....", "####..", "#.....", "######"),
    "F": ("######", "#.....", "####..", "#.....", "#....."),
    "G": (".#####", "#.....", "#..###", "#....#", ".#####"),
    "H": ("#....#", "#....#", "######", "#....#", "#....#"),
    "I": (".####.", "..##..", "..##..", "..##..", ".####."),
    "J": ("..####", "....#.", "....#.", ".#..#.", "..##.."),
    "K": ("#...#.", "#..#..", "###...", "#..#..", "#...#."),
    "L": ("#.....", "#.....", "#.....", "#.....", "#####."),
    "M": ("##..##", "#.##.#", "#....#", "#....#", "#....#"),
    "N": ("#....#", "##...#", "#.#..#", "#..#.#", "#...##"),
    "O": (".####.", "#....#", "#....#", "#....#", ".####."),
    "P": ("####..", "#...#.", "#...#.", "####..", "#....."),
    "Q": (".####.", "#....#", "#..#.#", "#...#.", ".###.#"),
    "R": ("####..", "#...#.", "####..", "#..#..", "#...#."),
    "S": (".#####", "#.....", ".####.", ".....#", "#####."),
    "T": ("######", "..##..", "..##..", "..##..", "..##.."),
    "U": ("#....#", "#....#", "#....#", "#....#", ".####."),
    "V": ("#....#", "#....#", ".#..#.", ".#..#.", "..##.."),
    "W": ("#....#", "#....#", "#.##.#", "#.##.#", ".#..#."),
    "X": ("#....#", ".#..#.", "..##..", ".#..#.", "#....#"),
    "Y": ("#....#", ".#..#.", "..##..", "..##..", "..##.."),
    "Z": ("######", "....#.", "..##..", ".#....", "######"),
}

#: Every letter cymlp can draw, in order.
LETTERS: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: (rows, columns) of a letter's grid; ``X`` holds ``rows * columns`` pixels per sample.
GRID_SHAPE: Tuple[int, int] = (5, 6)

# Strings, so that importing this module does not load numpy.random.
SeedLike = Union[None, int, "np.random.SeedSequence", "np.random.Generator"]


def letter_image(letter: str) -> np.ndarray:
    """The 5x6 pixel grid of one letter.

    Parameters
    ----------
    letter : str
        One letter from A to Z, upper or lower case.

    Returns
    -------
    ndarray of shape (5, 6), dtype float64
        1.0 where the letter is drawn, 0.0 elsewhere. A, B and C are the
        tutorial's grids.

    Raises
    ------
    TypeError
        ``letter`` is not a string.
    ValueError
        ``letter`` is not a single letter from A to Z.

    Examples
    --------
    >>> letter_image("A").astype(int)
    array([[0, 0, 1, 1, 0, 0],
           [0, 1, 0, 0, 1, 0],
           [1, 1, 1, 1, 1, 1],
           [1, 0, 0, 0, 0, 1],
           [1, 0, 0, 0, 0, 1]])
    """
    if not isinstance(letter, str):
        raise TypeError(f"letter must be a string such as 'A'; got {letter!r}")
    if len(letter) != 1 or letter.upper() not in _LETTER_ROWS:
        raise ValueError(f"letter must be one letter from A to Z; got {letter!r}")
    return np.array([[1.0 if pixel == "#" else 0.0 for pixel in row]
                     for row in _LETTER_ROWS[letter.upper()]])


def letters(letters: str = "ABC", n_per_letter: int = 1, noise: float = 0.0,
            shift: bool = False, seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
    """Letters as 30-pixel inputs with one-hot labels; by default the tutorial's A, B, C.

    Parameters
    ----------
    letters : str, default="ABC"
        The letters to draw, distinct, from A to Z in either case (returned
        upper case in the order given). Column ``j`` of ``Y`` stands for
        ``letters[j]``.
    n_per_letter : int, default=1
        Copies of each letter. Rows are interleaved: row ``i * len(letters)
        + j`` is copy ``i`` of ``letters[j]``, so every block of
        ``len(letters)`` rows holds each letter once.
    noise : float, default=0.0
        Probability, independently for every pixel of every copy, of flipping
        it (0 becomes 1, 1 becomes 0); ``0 <= noise < 0.5``. Applied after
        the shift.
    shift : bool, default=False
        Move each copy by a random offset of -1, 0 or +1 rows and -1, 0 or +1
        columns, drawn uniformly and independently per direction among the
        offsets that keep the whole glyph on the grid. Pixels uncovered by
        the move are 0; ink never wraps around and is never cut off, so a
        glyph that spans the whole grid in a direction does not move in that
        direction. Every glyph here is 5 rows tall, so in practice only
        glyphs narrower than 6 columns (B, C, D, I, J, K, L, P, R) move, and
        only sideways.
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None, default=None
        Seeds ``numpy.random.default_rng``, the only source of randomness
        (offsets first, then pixel flips): the same seed gives the same
        arrays. Unused (but still checked) when ``noise == 0`` and ``shift``
        is False.

    Returns
    -------
    X : ndarray of shape (n_per_letter * len(letters), 30), dtype float64
        Each grid flattened row by row, pixels 0.0 or 1.0.
    Y : ndarray of shape (n_per_letter * len(letters), len(letters)), dtype float64
        One-hot labels.

    Raises
    ------
    TypeError
        An argument has the wrong type (e.g. ``n_per_letter=2.5``).
    ValueError
        An argument is out of range: ``letters`` empty, repeating a letter or
        holding something other than A-Z; ``n_per_letter < 1``; ``noise``
        outside ``[0, 0.5)``; a negative ``seed``.

    Examples
    --------
    >>> X, Y = letters()
    >>> X.shape, Y.shape
    ((3, 30), (3, 3))
    >>> X, Y = letters("ABCDEFGHIJ", n_per_letter=20, noise=0.05, seed=1)
    >>> X.shape, Y.shape
    ((200, 30), (200, 10))
    """
    names = _check_letters(letters)
    n_per_letter = check_int(n_per_letter, "n_per_letter", minimum=1)
    noise = check_float(noise, "noise", minimum=0.0, maximum=0.5, inclusive_minimum=True)
    shift = check_bool(shift, "shift")
    seed = check_seed(seed, allow_generator=True)
    rng = np.random.default_rng(seed) if (noise or shift) else None

    glyphs = np.stack([letter_image(name) for name in names])   # (n_letters, 5, 6)
    which = np.tile(np.arange(len(names)), n_per_letter)        # letter index of each row
    images = glyphs[which]
    if shift:
        images = _shift_randomly(images, glyphs, which, rng)
    X = images.reshape(len(which), -1)
    if noise:
        flip = rng.random(X.shape) < noise
        X = np.where(flip, 1.0 - X, X)
    Y = np.eye(len(names))[which]
    return X, Y


def _shift_randomly(images, glyphs, which, rng):
    """Each image moved by an offset in {-1, 0, 1}**2 that keeps its ink on the grid."""
    n_rows, n_cols = GRID_SHAPE
    ink_rows, ink_cols = glyphs.any(axis=2), glyphs.any(axis=1)
    # Per glyph, the allowed range of offsets in each direction, clipped to [-1, 1].
    low_row = -np.minimum(1, ink_rows.argmax(axis=1))
    high_row = np.minimum(1, ink_rows[:, ::-1].argmax(axis=1))
    low_col = -np.minimum(1, ink_cols.argmax(axis=1))
    high_col = np.minimum(1, ink_cols[:, ::-1].argmax(axis=1))
    row_offsets = rng.integers(low_row[which], high_row[which], endpoint=True)
    col_offsets = rng.integers(low_col[which], high_col[which], endpoint=True)
    shifted = np.zeros_like(images)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            chosen = (row_offsets == dr) & (col_offsets == dc)
            if not chosen.any():
                continue
            # Destination and source windows of the move; the strip left behind stays 0.
            shifted[chosen, max(dr, 0):n_rows + min(dr, 0), max(dc, 0):n_cols + min(dc, 0)] = \
                images[chosen, max(-dr, 0):n_rows + min(-dr, 0), max(-dc, 0):n_cols + min(-dc, 0)]
    return shifted


def _check_letters(letters):
    """The letters as an upper-case string, or a clear error naming ``letters``."""
    if not isinstance(letters, str):
        raise TypeError(f"letters must be a string of distinct letters A-Z such as 'ABC'; "
                        f"got {letters!r}")
    names = letters.upper()
    if not names:
        raise ValueError("letters must name at least one letter from A to Z; got ''")
    unknown = sorted({char for char in names if char not in _LETTER_ROWS})
    if unknown:
        raise ValueError(f"letters must hold only letters A-Z; got {letters!r} "
                         f"(not letters: {', '.join(map(repr, unknown))})")
    repeated = sorted({char for char in names if names.count(char) > 1})
    if repeated:
        raise ValueError(f"letters must not repeat a letter; got {letters!r} "
                         f"(repeated: {', '.join(repeated)})")
    return names
