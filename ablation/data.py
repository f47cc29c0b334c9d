"""Data sets for the ablation studies: load one, hold out validation data, take stratified subsets.

``load(name, **options)`` returns a frozen :class:`Dataset` of NumPy arrays:

==============  =========================================  ==========================  ====================
name            source                                     train / test                values
==============  =========================================  ==========================  ====================
mnist           ``keras.datasets.mnist`` or an IDX folder  60,000 / 10,000, 28x28      float32 in [0, 1]
fashion_mnist   ``keras.datasets.fashion_mnist`` or IDX    60,000 / 10,000, 28x28      float32 in [0, 1]
mnist1d         generated offline by the ``mnist1d``       0.8 / 0.2 of num_samples    float32, standardized
                package (Greydanus 2020)                   (default 4,000 / 1,000), 40  (mean 0, std 1)
digits          scikit-learn's bundled 8x8 digits          1,437 / 360, 8x8            float32 in [0, 1]
==============  =========================================  ==========================  ====================

Inputs are flattened to ``(d,)`` for MLPs; ``flatten=False`` keeps the image shape with one channel
(``(28, 28, 1)``, ``(8, 8, 1)``; MNIST-1D becomes ``(40, 1)``). Labels are int64 in ``0..k-1``.
MNIST-1D keeps the package's standardization (the whole generated set is centred and scaled to unit
standard deviation), so its values are not in [0, 1].

MNIST and Fashion-MNIST come from Keras' downloader by default. Without network access, point
``data_dir=`` (or the environment variable ``ABLATION_MNIST_DIR`` / ``ABLATION_FASHION_MNIST_DIR``)
at a folder holding the four standard IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each gzipped
or not); they are parsed here with NumPy.

Loaded arrays are cached in-process per option set and are read-only; every array a ``Dataset``
hands out is read-only, so copy before modifying.

Validation data (:meth:`Dataset.validation_split`): for mnist / fashion_mnist the last examples of
the training set (by default the last 10,000, as in Srivastava et al. 2014, JMLR 15, App. B.1);
for mnist1d / digits a seeded stratified random holdout (by default ``round(0.1 * n_train)``).

Training subsets (:meth:`Dataset.subset`) are stratified, exact in size and nested for one seed
(Srivastava et al. 2014, Fig. 10 trains on random subsets of 100 ... 50K MNIST examples).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import random
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ablation import checks

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
ENV_VARS = {"mnist": "ABLATION_MNIST_DIR", "fashion_mnist": "ABLATION_FASHION_MNIST_DIR"}
TAIL_VALIDATION_SIZE = {"mnist": 10_000, "fashion_mnist": 10_000}  # last N training examples
DEFAULT_VALIDATION_FRACTION = 0.1  # other data sets: stratified random holdout of 10%
DIGITS_TEST_SIZE = 360  # of 1,797 digits; stratified, fixed seed 0 -> 1,437 train / 360 test
DIGITS_SPLIT_SEED = 0
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
    """A classification data set as read-only NumPy arrays.

    Attributes:
        x_train, y_train: training inputs (float32) and labels (int64, ``0..num_classes-1``).
        x_test, y_test: test inputs and labels.
        num_classes: number of classes k.
        input_shape: shape of one input, e.g. ``(784,)`` or ``(28, 28, 1)``.
        name: the data set's registered name (decides the validation policy).
        x_val, y_val: validation data; None until :meth:`validation_split` holds some out.
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

    def __post_init__(self) -> None:
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
        ``round(0.1 * num_train)``). The remaining training examples keep their order.

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
            held = _stratified_holdout(self.y_train, size, seed, self.num_classes)
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
        ``(seed, n)``.

        Args:
            n: number of training examples, ``1 <= n <= num_train``.
            seed: an int >= 0; the same seed gives the same subset.

        Returns:
            A new Dataset with ``n`` training examples.
        """
        n = _check_int("n", n, 1, self.num_train,
                       f" (the number of training examples of '{self.name}')")
        seed = _check_seed(seed)
        chosen = _stratified_order(self.y_train, seed, self.num_classes)[:n]
        chosen = np.random.default_rng([seed, n]).permutation(chosen)
        return dataclasses.replace(self, x_train=_take(self.x_train, chosen),
                                   y_train=_take(self.y_train, chosen))

    def describe(self) -> str:
        """A few lines: name, classes, input shape and the shape and dtype of every split."""
        lines = [f"Dataset '{self.name}': {self.num_classes} classes, input shape {self.input_shape}"]
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x is not None:
                lines.append(f"  {split + ':':6} x {x.shape} {x.dtype}, y {y.shape} {y.dtype}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, num_classes={self.num_classes}, input_shape="
                f"{self.input_shape}, train={self.num_train}, val={self.num_val}, test={self.num_test})")


def _shape(array: Any) -> str:
    return "None" if array is None else f"shape {np.shape(array)}"


def _take(array: np.ndarray, index: slice | np.ndarray) -> np.ndarray:
    return _readonly(array[index]) if isinstance(index, np.ndarray) else array[index]


# --------------------------------------------------------------------------- IDX files


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes (``0x00000800 + ndim`` magic), gzipped or not."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"Could not read IDX file {path}: {type(err).__name__}: {err}") from err
    expected = 0x0800 + ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected:
        found = "none (file shorter than 4 bytes)" if magic is None else f"0x{magic:08x}"
        raise ValueError(f"IDX file {path} has a wrong magic number: expected 0x{expected:08x} "
                         f"(unsigned bytes, {ndim} dimension(s)), found {found}. Is it corrupt?")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path} is truncated: {len(raw)} bytes, shorter than its "
                         f"{header}-byte header.")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    if len(raw) != header + int(np.prod(dims)):
        raise ValueError(f"IDX file {path} is truncated or corrupt: its header gives shape {dims} "
                         f"({int(np.prod(dims))} data bytes) but it holds {len(raw) - header}.")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _idx_paths(folder: Path, name: str, source: str) -> list[Path]:
    """The four IDX files in ``folder`` (plain preferred over ``.gz``), or a FileNotFoundError."""
    how = (f"Supply them with data.load({name!r}, data_dir='path/to/folder') or the environment "
           f"variable {ENV_VARS[name]}; the folder must hold the four standard IDX files "
           f"{', '.join(IDX_FILES)} (each may be gzipped, with '.gz').")
    if not folder.is_dir():
        raise FileNotFoundError(f"{name} data folder not found: {folder} (given by {source}). {how}")
    paths, missing = [], []
    for base in IDX_FILES:
        found = [p for p in (folder / base, folder / (base + ".gz")) if p.is_file()]
        paths.extend(found[:1])
        missing.extend([] if found else [base])
    if missing:
        raise FileNotFoundError(f"{name} IDX files missing in {folder} (given by {source}): looked "
                                f"for {', '.join(missing)} (with or without '.gz'). {how}")
    return paths


def _load_idx_folder(name: str, folder: Path, source: str) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test) as uint8 arrays read from a folder of IDX files."""
    x_train, y_train, x_test, y_test = (_read_idx(p, 3 if "images" in p.name else 1)
                                        for p in _idx_paths(folder, name, source))
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        if images.shape[1:] != (28, 28) or len(images) != len(labels) or not 0 < len(labels) \
                or labels.max() > 9:
            raise ValueError(f"{name} IDX files in {folder} do not fit together: images {images.shape}"
                             f", labels {labels.shape} with maximum {labels.max()}; expected "
                             "(n, 28, 28) images, n labels, labels 0..9.")
    return x_train, y_train, x_test, y_test


def _load_with_keras(name: str) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test) from ``keras.datasets.<name>.load_data()``."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as err:  # noqa: BLE001 - any download failure gets the same advice
        raise RuntimeError(
            f"Could not load {name} with keras.datasets.{name}.load_data() ({type(err).__name__}: "
            f"{err}). Without network access, read it from a local folder of the four IDX files "
            f"({', '.join(IDX_FILES)}, gzipped or not): data.load({name!r}, data_dir='path/to/folder')"
            f" or set the environment variable {ENV_VARS[name]}.") from err
    return x_train, y_train, x_test, y_test


def _load_mnist_like(name: str, data_dir: tuple[str, str] | None) -> tuple[np.ndarray, ...]:
    """Scaled arrays from ``data_dir = (where the path came from, absolute path)``, else Keras."""
    if data_dir is None:
        arrays = _load_with_keras(name)
    else:
        source, folder = data_dir
        arrays = _load_idx_folder(name, Path(folder), source)
    x_train, y_train, x_test, y_test = arrays
    return (_to_unit(x_train, 255.0), y_train.astype(np.int64),
            _to_unit(x_test, 255.0), y_test.astype(np.int64))


def _to_unit(images: np.ndarray, scale: float) -> np.ndarray:
    x = images.astype(np.float32)
    x /= np.float32(scale)
    return x


# --------------------------------------------------------------------------- generated / bundled


def _load_mnist1d(num_samples: int, seed: int) -> tuple[np.ndarray, ...]:
    """MNIST-1D (Greydanus 2020) generated offline; restores the global NumPy / random RNG state."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)  # reseeds numpy's and Python's global RNGs
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return (data["x"].astype(np.float32), data["y"].astype(np.int64),
            data["x_test"].astype(np.float32), data["y_test"].astype(np.int64))


def _load_digits() -> tuple[np.ndarray, ...]:
    """scikit-learn's 1,797 8x8 digits, pixels / 16, fixed stratified 1,437 / 360 split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = _to_unit(bunch.images, 16.0), bunch.target.astype(np.int64)
    test = _stratified_holdout(y, DIGITS_TEST_SIZE, DIGITS_SPLIT_SEED, 10)
    train = np.setdiff1d(np.arange(len(y)), test, assume_unique=True)
    return x[train], y[train], x[test], y[test]


# --------------------------------------------------------------------------- registry and load()


@dataclasses.dataclass(frozen=True)
class _Source:
    loader: Callable[..., tuple[np.ndarray, ...]]
    options: tuple[str, ...]  # keyword options of load(), besides flatten
    defaults: tuple[tuple[str, Any], ...] = ()


_SOURCES: dict[str, _Source] = {
    "digits": _Source(_load_digits, ()),
    "fashion_mnist": _Source(lambda data_dir: _load_mnist_like("fashion_mnist", data_dir),
                             ("data_dir",), (("data_dir", None),)),
    "mnist": _Source(lambda data_dir: _load_mnist_like("mnist", data_dir),
                     ("data_dir",), (("data_dir", None),)),
    "mnist1d": _Source(_load_mnist1d, ("num_samples", "seed"), (("num_samples", 5000), ("seed", 42))),
}


DISPLAY_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "mnist1d": "MNIST-1D", "digits": "digits (8x8)"}


def train_examples(name: str, **options: Any) -> int:
    """How many training examples ``load(name, **options)`` gives, without loading anything."""
    _source(name)
    if name in ("mnist", "fashion_mnist"):
        return 60_000
    if name == "digits":
        return 1_797 - DIGITS_TEST_SIZE
    return int(0.8 * options.get("num_samples", dict(_SOURCES["mnist1d"].defaults)["num_samples"]))


def list_datasets() -> list[str]:
    """Names accepted by :func:`load`, sorted."""
    return sorted(_SOURCES)


def dataset_options(name: str) -> tuple[str, ...]:
    """The keyword options ``load(name, ...)`` accepts (e.g. ``('data_dir', 'flatten')``)."""
    return tuple(sorted(_source(name).options + ("flatten",)))


def _source(name: str) -> _Source:
    if name not in _SOURCES:
        raise checks.invalid("name", f"one of {', '.join(list_datasets())}", name)
    return _SOURCES[name]


def check_options(name: str, **options: Any) -> None:
    """Raise the ValueError :func:`load` would raise for these options, without loading anything."""
    _resolve_options(name, options)


def _check_option(key: str, value: Any) -> Any:
    """Validate one option of ``load``; data_dir becomes ``(source, absolute path)`` for the cache."""
    if key == "flatten" and not isinstance(value, (bool, np.bool_)):
        raise checks.invalid("flatten", "True or False", value)
    if key == "num_samples":
        if not _is_int(value) or value < 10 or value % 10:
            raise checks.invalid("num_samples", "a positive multiple of 10 (10 classes, 80% train / 20% test)", value)
        return int(value)
    if key == "seed":
        return _check_seed(value)
    if key == "data_dir":
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise checks.invalid("data_dir", "a folder path (str or os.PathLike)", value)
        return f"data_dir={str(value)!r}", str(Path(value).expanduser().resolve())
    return value


def _resolve_options(name: str, options: dict[str, Any]) -> tuple[bool, tuple[tuple[str, Any], ...]]:
    """Check the options of ``load(name, ...)``; return ``(flatten, hashable loader options)``."""
    source = _source(name)
    for key in options:
        if key not in source.options and key != "flatten":
            raise ValueError(f"Unknown option {key!r} for data set {name!r}: expected one of "
                             f"{dataset_options(name)}. Received: {key}={options[key]!r}")
    values = {k: _check_option(k, v) for k, v in options.items()}
    env = ENV_VARS.get(name)
    if values.get("data_dir") is None and env and os.environ.get(env):
        path = os.environ[env]
        values["data_dir"] = (f"environment variable {env}={path!r}", str(Path(path).expanduser().resolve()))
    merged = {**dict(source.defaults), **values}
    flatten = bool(merged.pop("flatten", True))
    return flatten, tuple(sorted(merged.items()))


@functools.lru_cache(maxsize=8)
def _cached_arrays(name: str, options: tuple[tuple[str, Any], ...]) -> tuple[np.ndarray, ...]:
    return tuple(_readonly(a) for a in _SOURCES[name].loader(**dict(options)))


def clear_cache() -> None:
    """Forget the arrays cached by :func:`load` (frees their memory)."""
    _cached_arrays.cache_clear()


def load(name: str, **options: Any) -> Dataset:
    """Load a data set by name (cached in-process; arrays are read-only).

    Args:
        name: one of :func:`list_datasets`: ``mnist``, ``fashion_mnist``, ``mnist1d``, ``digits``.
        **options: see :func:`dataset_options`.
            flatten (all, default True): inputs as ``(d,)``; False keeps ``(H, W, 1)`` / ``(40, 1)``.
            data_dir (mnist, fashion_mnist): a folder of the four IDX files, gzipped or not; default
                the environment variable ``ABLATION_MNIST_DIR`` / ``ABLATION_FASHION_MNIST_DIR``,
                else Keras' downloader.
            num_samples (mnist1d, default 5000): examples generated, a multiple of 10; 80% train.
            seed (mnist1d, default 42, the package's): generator seed.

    Returns:
        A :class:`Dataset` without validation data (see :meth:`Dataset.validation_split`).
    """
    flatten, key = _resolve_options(name, options)
    x_train, y_train, x_test, y_test = _cached_arrays(name, key)
    sample_shape = x_train.shape[1:]
    input_shape = (int(np.prod(sample_shape)),) if flatten else sample_shape + (1,)
    return Dataset(x_train=x_train.reshape((-1,) + input_shape), y_train=y_train,
                   x_test=x_test.reshape((-1,) + input_shape), y_test=y_test,
                   num_classes=10, input_shape=tuple(int(d) for d in input_shape), name=name)
