"""cymlp.datasets: the tutorial's letters, the alphabet, noisy and shifted copies."""

import itertools

import numpy as np
import pytest

from cymlp import datasets
from cymlp.datasets import GRID_SHAPE, LETTERS, letter_image, letters

# The tutorial's grids, copied from the tutorial (not from cymlp).
TUTORIAL_A = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1]
TUTORIAL_B = [0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0]
TUTORIAL_C = [0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0]


def offsets_of(image, glyph):
    """The (row, column) offsets in {-1, 0, 1}^2 that move ``glyph`` onto ``image``."""
    found = []
    for dr, dc in itertools.product((-1, 0, 1), repeat=2):
        moved = np.zeros_like(glyph)
        rows, cols = glyph.shape
        source = glyph[max(-dr, 0):rows - max(dr, 0), max(-dc, 0):cols - max(dc, 0)]
        moved[max(dr, 0):rows - max(-dr, 0), max(dc, 0):cols - max(-dc, 0)] = source
        if source.sum() == glyph.sum() and np.array_equal(moved, image):
            found.append((dr, dc))
    return found


# ---- the tutorial's letters --------------------------------------------------

def test_default_is_the_tutorials_data_bit_for_bit():
    X, Y = letters()
    assert X.shape == (3, 30) and Y.shape == (3, 3)
    assert X.dtype == Y.dtype == np.float64
    np.testing.assert_array_equal(X, np.array([TUTORIAL_A, TUTORIAL_B, TUTORIAL_C], float))
    np.testing.assert_array_equal(Y, np.eye(3))
    for name, expected in zip("ABC", (TUTORIAL_A, TUTORIAL_B, TUTORIAL_C)):
        np.testing.assert_array_equal(letter_image(name).ravel(), expected)


def test_explicit_defaults_and_lower_case_give_the_same_arrays():
    X, Y = letters()
    for X2, Y2 in (letters("ABC", 1, 0.0, False, None), letters("abc"), letters("aBc", seed=5)):
        assert X2.tobytes() == X.tobytes() and Y2.tobytes() == Y.tobytes()


# ---- the alphabet ------------------------------------------------------------

def test_letters_constant_is_the_alphabet():
    assert LETTERS == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert GRID_SHAPE == (5, 6)


def test_all_26_glyphs_are_5x6_binary_and_distinct():
    images = [letter_image(name) for name in LETTERS]
    for name, image in zip(LETTERS, images):
        assert image.shape == (5, 6) and image.dtype == np.float64, name
        assert set(np.unique(image)) <= {0.0, 1.0}, name
        assert image.sum() >= 8, f"{name} has too little ink to read"
        assert image.any(axis=1).all(), f"{name} leaves a row empty"
    flat = np.array([image.ravel() for image in images])
    assert len({row.tobytes() for row in flat}) == 26


def test_glyphs_are_far_apart():
    """What the module docstring promises: at least 4 pixels apart, 5 among A-J."""
    flat = {name: letter_image(name).ravel() for name in LETTERS}
    distance = {(a, b): int(np.sum(flat[a] != flat[b]))
                for a, b in itertools.combinations(LETTERS, 2)}
    assert min(distance.values()) == 4
    assert min(d for (a, b), d in distance.items() if a in "ABCDEFGHIJ" and b in "ABCDEFGHIJ") == 5


def test_letter_image_is_case_insensitive_and_returns_a_fresh_array():
    image = letter_image("q")
    np.testing.assert_array_equal(image, letter_image("Q"))
    image[...] = 0
    assert letter_image("Q").sum() > 0


def test_columns_follow_the_order_of_letters():
    X, Y = letters("zCa")
    np.testing.assert_array_equal(X, [letter_image(n).ravel() for n in "ZCA"])
    np.testing.assert_array_equal(Y, np.eye(3))


def test_copies_are_interleaved_by_letter():
    X, Y = letters("ABCDEFGHIJ", n_per_letter=4)
    assert X.shape == (40, 30) and Y.shape == (40, 10)
    np.testing.assert_array_equal(Y.argmax(axis=1), np.tile(np.arange(10), 4))
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    for row, label in zip(X, Y.argmax(axis=1)):  # without noise or shift: exact copies
        np.testing.assert_array_equal(row, letter_image("ABCDEFGHIJ"[label]).ravel())


def test_whole_alphabet():
    X, Y = letters(LETTERS, n_per_letter=2)
    assert X.shape == (52, 30) and Y.shape == (52, 26)
    np.testing.assert_array_equal(Y[:26], np.eye(26))


# ---- randomness ----------------------------------------------------------------

@pytest.mark.parametrize("options", [dict(noise=0.1), dict(shift=True),
                                     dict(noise=0.1, shift=True)])
def test_deterministic_for_a_seed_and_different_across_seeds(options):
    first = letters("ABCDEFGHIJ", 50, seed=7, **options)
    again = letters("ABCDEFGHIJ", 50, seed=7, **options)
    other = letters("ABCDEFGHIJ", 50, seed=8, **options)
    assert first[0].tobytes() == again[0].tobytes()
    assert not np.array_equal(first[0], other[0])
    np.testing.assert_array_equal(first[1], other[1])  # labels do not depend on the seed


def test_seed_sequence_and_generator_are_accepted():
    sequence = np.random.SeedSequence(11)
    X1, _ = letters("ABC", 20, noise=0.2, seed=sequence)
    X2, _ = letters("ABC", 20, noise=0.2, seed=np.random.SeedSequence(11))
    np.testing.assert_array_equal(X1, X2)
    generator = np.random.default_rng(3)
    X3, _ = letters("ABC", 20, noise=0.2, seed=generator)
    X4, _ = letters("ABC", 20, noise=0.2, seed=generator)  # the generator moved on
    assert not np.array_equal(X3, X4)
    np.testing.assert_array_equal(X3, letters("ABC", 20, noise=0.2, seed=3)[0])


def test_no_seed_draws_fresh_copies():
    X1, _ = letters("ABC", 50, noise=0.2)
    X2, _ = letters("ABC", 50, noise=0.2)
    assert not np.array_equal(X1, X2)


@pytest.mark.parametrize("noise", [0.01, 0.05, 0.2, 0.45])
def test_noise_flips_pixels_at_the_requested_rate(noise):
    n_per_letter = 400
    X, _ = letters(LETTERS, n_per_letter, noise=noise, seed=2)
    clean, _ = letters(LETTERS, n_per_letter)
    flipped = X != clean
    assert set(np.unique(X)) <= {0.0, 1.0}
    # Binomial: 312,000 pixels; five standard errors is far from a chance failure.
    for where in (clean == 1, clean == 0, np.ones_like(clean, bool)):  # ink and paper alike
        n = where.sum()
        rate = flipped[where].mean()
        assert abs(rate - noise) < 5 * np.sqrt(noise * (1 - noise) / n), (rate, noise)
    # Flips are independent of position: every pixel is flipped at about the rate.
    per_pixel = flipped.mean(axis=0)
    per_pixel_error = np.sqrt(noise * (1 - noise) / X.shape[0])
    assert np.all(np.abs(per_pixel - noise) < 5 * per_pixel_error)


def test_zero_noise_changes_nothing():
    X, _ = letters(LETTERS, 5, noise=0.0, seed=1)
    np.testing.assert_array_equal(X, letters(LETTERS, 5)[0])


# ---- shifts ---------------------------------------------------------------------

def test_shift_keeps_the_ink_and_stays_on_the_grid():
    n_per_letter = 60
    X, Y = letters(LETTERS, n_per_letter, shift=True, seed=4)
    moved = 0
    for row, label in zip(X, Y.argmax(axis=1)):
        glyph = letter_image(LETTERS[label])
        image = row.reshape(5, 6)
        assert image.sum() == glyph.sum()  # no ink cut off, none added
        offsets = offsets_of(image, glyph)
        assert offsets, f"{LETTERS[label]} is not a move of at most one pixel of its glyph"
        moved += (0, 0) not in offsets
    assert moved > 0.15 * len(X)


def test_shift_moves_only_where_the_glyph_fits():
    """A (full width) never moves; B (columns 1-4) moves left, right or not, evenly."""
    n_per_letter = 3000
    X, Y = letters("AB", n_per_letter, shift=True, seed=9)
    a_copies, b_copies = X[0::2], X[1::2]
    np.testing.assert_array_equal(a_copies, np.tile(letter_image("A").ravel(), (n_per_letter, 1)))
    glyph = letter_image("B")
    counts = {}
    for image in b_copies:
        (offset,) = offsets_of(image.reshape(5, 6), glyph)
        counts[offset] = counts.get(offset, 0) + 1
    assert set(counts) == {(0, -1), (0, 0), (0, 1)}  # 5 rows tall: never up or down
    for count in counts.values():  # uniform: 1000 each, standard error about 26
        assert abs(count - n_per_letter / 3) < 5 * np.sqrt(n_per_letter * 2 / 9)


def test_shift_then_noise():
    X_shift, _ = letters("BCD", 30, shift=True, seed=5)
    X_both, _ = letters("BCD", 30, noise=0.1, shift=True, seed=5)
    # The offsets are drawn first, so the noisy copies are noisy versions of the shifted ones.
    flipped = X_both != X_shift
    assert 0.05 < flipped.mean() < 0.15


# ---- errors -----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(letters=""), ValueError, "letters"),
    (dict(letters="ABA"), ValueError, "letters must not repeat"),
    (dict(letters="aA"), ValueError, "letters must not repeat"),
    (dict(letters="AB1"), ValueError, "letters must hold only letters"),
    (dict(letters="A B"), ValueError, "letters"),
    (dict(letters="ÄB"), ValueError, "letters"),
    (dict(letters=["A", "B"]), TypeError, "letters"),
    (dict(letters=None), TypeError, "letters"),
    (dict(n_per_letter=0), ValueError, "n_per_letter"),
    (dict(n_per_letter=2.5), TypeError, "n_per_letter"),
    (dict(n_per_letter=True), TypeError, "n_per_letter"),
    (dict(noise=-0.1), ValueError, "noise"),
    (dict(noise=0.5), ValueError, "noise"),
    (dict(noise=float("nan")), ValueError, "noise"),
    (dict(noise="0.1"), TypeError, "noise"),
    (dict(shift="yes"), TypeError, "shift"),
    (dict(shift=1), TypeError, "shift"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed="1"), TypeError, "seed"),
])
def test_bad_arguments_raise_errors_naming_them(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        letters(**kwargs)


@pytest.mark.parametrize("value, error", [("AB", ValueError), ("1", ValueError),
                                          ("", ValueError), (3, TypeError), (None, TypeError)])
def test_letter_image_rejects_non_letters(value, error):
    with pytest.raises(error, match="letter"):
        letter_image(value)


def test_module_exports():
    assert datasets.letters is letters and datasets.letter_image is letter_image
