"""Small data sets that come with cymlp."""

import numpy as np

# The tutorial's letters on a 5-row x 6-column grid, '#' = 1.
_LETTER_ROWS = {
    "A": ("..##..", ".#..#.", "######", "#....#", "#....#"),
    "B": (".####.", ".#..#.", ".####.", ".#..#.", ".####."),
    "C": (".####.", ".#....", ".#....", ".#....", ".####."),
}
GRID_SHAPE = (5, 6)


def letter_image(letter):
    """The 5x6 pixel grid of one letter.

    Parameters
    ----------
    letter : str
        "A", "B" or "C".

    Returns
    -------
    ndarray of shape (5, 6), dtype float64
        1.0 where the letter is drawn, 0.0 elsewhere.
    """
    if letter not in _LETTER_ROWS:
        raise ValueError(f"letter must be one of {', '.join(_LETTER_ROWS)}; got {letter!r}")
    return np.array([[1.0 if pixel == "#" else 0.0 for pixel in row]
                     for row in _LETTER_ROWS[letter]])


def letters():
    """The tutorial's data: the letters A, B and C with one-hot labels.

    Returns
    -------
    X : ndarray of shape (3, 30), dtype float64
        Each letter's 5x6 grid flattened row by row (binary pixels).
    Y : ndarray of shape (3, 3), dtype float64
        One-hot labels: A = [1, 0, 0], B = [0, 1, 0], C = [0, 0, 1].

    Examples
    --------
    >>> X, Y = letters()
    >>> X.shape, Y.shape
    ((3, 30), (3, 3))
    """
    names = "ABC"
    X = np.stack([letter_image(name).ravel() for name in names])
    Y = np.eye(len(names))
    return X, Y
