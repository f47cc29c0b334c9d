"""The :class:`Dataset`: a data set's read-only arrays, its validation holdout and its nested,
stratified training subsets.

Validation data (:meth:`Dataset.validation_split`): for mnist / fashion_mnist the last examples of
the training set (by default the last 10,000, as in Srivastava et al. 2014, JMLR 15, App. B.1);
for the other data sets a seeded stratified random holdout (by default ``round(0.1 * n_train)``).

Training subsets (:meth:`Dataset.subset`) are stratified, exact in size and nested for one seed
(Srivastava et al. 2014, Fig. 10 trains on random subsets of 100 ... 50K MNIST examples). For
regression (float targets) holdouts and subsets are random instead of stratified, still nested for
one seed. Every array a ``Dataset`` hands out is read-only, so copy before modifying.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ablation.base import checks
from ablation.data import tasks

TAIL_VALIDATION_SIZE = {"mnist": 10_000, "fashion_mnist": 10_000}  # last N training examples
DEFAULT_VALIDATION_FRACTION = 0.1  # other data sets: stratified random holdout of 10%
_MAX_SEED = 2**32 - 1


# --------------------------------------------------------------------------- argument checks


_is_int = checks.is_int


def _check_int(arg: str, value: Any, low: int, high: int, what: str = "") -> int:
    """Return ``value`` as an int if it is one in ``[low, high]``, else raise a ValueError."""
    return checks.integer(arg, value, low, high, what)


def _check_seed(seed: Any) -> int:
    return _check_int("seed", seed, 0, _MAX_SEED)


# --------------------------------------------------------------------------- sampling helpers


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _stratified_holdout(y: np.ndarray, size: int, seed: int, num_classes: int) -> np.ndarray:
    """Sorted indices of a stratified random holdout of exactly ``size`` examples (``size < len(y)``).

    Class c gets ``floor(size * n_c / n)`` examples, plus one for the classes with the largest
    remainders (ties: lower class first) until ``size`` is reached; never more than ``n_c``.
    """
    counts = np.bincount(y, minlength=num_classes)
    take, remainder = np.divmod(size * counts, len(y))
    extra = size - int(take.sum())
    take[np.lexsort((np.arange(num_classes), -remainder))[:extra]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(y == c))[:take[c]] for c in range(num_classes)]
    return np.sort(np.concatenate(chosen))


def _holdout(y: np.ndarray, size: int, seed: int, num_classes: int, task: str) -> np.ndarray:
    """Sorted indices of a random holdout of ``size`` examples: stratified for classification."""
    if task == tasks.REGRESSION:
        return np.sort(np.random.default_rng(seed).permutation(len(y))[:size])
    return _stratified_holdout(y, size, seed, num_classes)


def _stratified_order(y: np.ndarray, seed: int, num_classes: int) -> np.ndarray:
    """All indices of ``y`` in the order a nested stratified subset takes them (one per seed).

    A seed-dependent class order and one seed-dependent permutation per class; the sequence deals
    round-robin: the first example of every class (in class order), then the second of every
    class, and so on, skipping classes that have run out. A subset of n is a prefix of it, so
    subsets of one seed are nested, class counts are monotone in n and each class gets
    ``floor(n / k)`` or ``ceil(n / k)`` until a class runs out; its unfilled share then goes,
    round-robin again, to the classes that still have examples.
    """
    rng = np.random.default_rng(seed)
    class_rank = np.empty(num_classes, dtype=np.int64)
    class_rank[rng.permutation(num_classes)] = np.arange(num_classes)
    round_of = np.empty(len(y), dtype=np.int64)
    for c in range(num_classes):
        members = rng.permutation(np.flatnonzero(y == c))
        round_of[members] = np.arange(len(members))
    return np.lexsort((class_rank[y], round_of))  # sort by round, then by class rank


# --------------------------------------------------------------------------- the Dataset


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A data set as read-only NumPy arrays.

    Attributes:
        x_train, y_train: training inputs (float32) and labels (int64, ``0..num_classes-1``) or, for
            regression, float32 targets of shape ``(n, t)``.
        x_test, y_test: test inputs and labels.
        num_classes: number of classes k (0 for regression).
        input_shape: shape of one input, e.g. ``(784,)`` or ``(28, 28, 1)``.
        name: the data set's registered name or file name (decides the validation policy).
        x_val, y_val: validation data; None until :meth:`validation_split` holds some out (or the
            source brought its own).
        task: "classification" or "regression" (``ablation.data.tasks``).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    name: str
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    task: str = tasks.CLASSIFICATION

    def __post_init__(self) -> None:
        tasks.check(self.task)
        for split in ("train", "test", "val"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if (x is None) != (y is None) or (x is not None and len(x) != len(y)):
                raise ValueError(f"Invalid Dataset: x_{split} and y_{split} must both be None or have "
                                 f"the same length. Received: {_shape(x)} and {_shape(y)}")

    @property
    def num_train(self) -> int:
        """Number of training examples."""
        return len(self.y_train)

    @property
    def num_outputs(self) -> int:
        """Output units a model needs: one per class, or one per regression target."""
        if self.task == tasks.REGRESSION:
            return int(np.prod(np.shape(self.y_train)[1:])) or 1
        return self.num_classes

    @property
    def num_val(self) -> int:
        """Number of validation examples (0 before :meth:`validation_split`)."""
        return 0 if self.y_val is None else len(self.y_val)

    @property
    def num_test(self) -> int:
        """Number of test examples."""
        return len(self.y_test)

    @property
    def validation_data(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(x_val, y_val)`` for ``model.fit(validation_data=...)``, or None."""
        return None if self.x_val is None else (self.x_val, self.y_val)

    def validation_split(self, size: int | None = None, seed: int = 0) -> Dataset:
        """Hold out validation data from the training set.

        mnist / fashion_mnist hold out the LAST ``size`` training examples (default 10,000: the
        50K/10K split of Srivastava et al. 2014, App. B.1); ``seed`` is then unused. Every other data
        set holds out a stratified random ``size`` examples chosen by ``seed`` (default
        ``round(0.1 * num_train)``; random, not stratified, for regression). The remaining training
        examples keep their order.

        Args:
            size: number of validation examples, ``0 <= size < num_train``; 0 means no validation
                set (the data set is returned unchanged); None the default above.
            seed: seed of the stratified random holdout, an int >= 0.

        Returns:
            A new Dataset with ``x_val``/``y_val`` set and that many fewer training examples.
        """
        if self.x_val is not None:
            raise ValueError(f"Dataset '{self.name}' already has a validation set ({self.num_val} "
                             "examples); call validation_split() once, on the data set as loaded.")
        seed = _check_seed(seed)
        n, tail = self.num_train, self.name in TAIL_VALIDATION_SIZE
        if size is None:
            size = TAIL_VALIDATION_SIZE[self.name] if tail else round(DEFAULT_VALIDATION_FRACTION * n)
        size = _check_int("size", size, 0, n - 1, f" or None (held out of the {n} training "
                          f"examples of '{self.name}')")
        if size == 0:
            return self
        if tail:
            keep, held = slice(0, n - size), slice(n - size, n)
        else:
            held = _holdout(self.y_train, size, seed, self.num_classes, self.task)
            keep = np.setdiff1d(np.arange(n), held, assume_unique=True)
        return dataclasses.replace(
            self, x_train=_take(self.x_train, keep), y_train=_take(self.y_train, keep),
            x_val=_take(self.x_train, held), y_val=_take(self.y_train, held))

    def subset(self, n: int, seed: int = 0) -> Dataset:
        """A stratified subset of exactly ``n`` training examples; validation and test untouched.

        Each class gets ``floor(n / k)`` or ``ceil(n / k)`` examples; which classes get the extra
        one follows a seed-dependent class order. A class with fewer examples than its share gives
        all it has, and the rest goes evenly to the other classes, so n stays exact. For one seed
        the subsets are nested (``subset(100)`` is inside ``subset(500)``), since each is a prefix of
        one seed-dependent sequence. The examples come back in a shuffled order fixed by
        ``(seed, n)``. Regression subsets are prefixes of one seed-dependent permutation (nested,
        not stratified).

        Args:
            n: number of training examples, ``1 <= n <= num_train``.
            seed: an int >= 0; the same seed gives the same subset.

        Returns:
            A new Dataset with ``n`` training examples.
        """
        n = _check_int("n", n, 1, self.num_train,
                       f" (the number of training examples of '{self.name}')")
        seed = _check_seed(seed)
        if self.task == tasks.REGRESSION:
            chosen = np.random.default_rng(seed).permutation(self.num_train)[:n]
        else:
            chosen = _stratified_order(self.y_train, seed, self.num_classes)[:n]
        chosen = np.random.default_rng([seed, n]).permutation(chosen)
        return dataclasses.replace(self, x_train=_take(self.x_train, chosen),
                                   y_train=_take(self.y_train, chosen))

    def describe(self) -> str:
        """A few lines: name, classes, input shape and the shape and dtype of every split."""
        what = f"{self.num_classes} classes" if self.task == tasks.CLASSIFICATION else \
            f"regression, {self.num_outputs} target{'s' if self.num_outputs > 1 else ''}"
        lines = [f"Dataset '{self.name}': {what}, input shape {self.input_shape}"]
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x is not None:
                lines.append(f"  {split + ':':6} x {x.shape} {x.dtype}, y {y.shape} {y.dtype}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        task = "" if self.task == tasks.CLASSIFICATION else f", task={self.task!r}"
        return (f"Dataset(name={self.name!r}, num_classes={self.num_classes}, input_shape="
                f"{self.input_shape}, train={self.num_train}, val={self.num_val}, test={self.num_test}{task})")


def _shape(array: Any) -> str:
    return "None" if array is None else f"shape {np.shape(array)}"


def _take(array: np.ndarray, index: slice | np.ndarray) -> np.ndarray:
    return _readonly(array[index]) if isinstance(index, np.ndarray) else array[index]
