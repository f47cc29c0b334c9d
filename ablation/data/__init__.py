"""Data sets for the ablation studies: load one, hold out validation data, take stratified subsets.

The package: readers of raw arrays (``sources``, ``builtin``), a loaded set (``dataset``), the task
(``tasks``: classification or regression, its loss and metrics) and how predictions are scored
(``evaluation``); ``load`` is defined here. May import: base, zoo.

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

Besides the built-in names, :func:`load` reads your files (``load("my.npz")``, ``load("my.csv",
target="label")``), any array data set of ``keras.datasets`` (``load("cifar10")``) and, when the
package is installed, ``tensorflow_datasets`` (``load("tfds:beans")``); :func:`from_arrays` wraps
arrays you hold (module :mod:`ablation.data.sources`). A data set's task is classification (int labels
``0..k-1``, any k >= 2) or regression (float targets, stored as ``(n, t)``; ``num_classes`` is 0,
holdouts and subsets are random instead of stratified, still nested for one seed).

The built-in sets' readers are :mod:`ablation.data.builtin`, the :class:`Dataset` and its holdouts and
subsets :mod:`ablation.data.dataset`, other sources (files, ``keras.datasets``, tfds) :mod:`ablation.data.sources`;
this module chooses among them, checks options and caches what it loaded.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from ablation.base import checks
from ablation.data import sources, tasks
from ablation.data.builtin import _SOURCES, DIGITS_TEST_SIZE, DISPLAY_NAMES, ENV_VARS, _Source  # noqa: F401
from ablation.data.dataset import Dataset, _check_seed, _holdout, _is_int, _readonly

__all__ = ["DISPLAY_NAMES", "KERAS_DATASETS", "Dataset", "check_options", "clear_cache", "dataset_options",
           "from_arrays", "kind_of", "list_datasets", "load", "load_spec", "natural_task", "train_examples"]

# --------------------------------------------------------------------------- registry and load()

KERAS_DATASETS = tuple(sorted(set(sources.KERAS_DATASETS) - set(_SOURCES)))  # besides the built-in names
_TEST_SPLIT_SEED = 0  # the test split of a table (CSV / Parquet) without one


def train_examples(name: str, **options: Any) -> int | None:
    """How many training examples ``load(name, **options)`` gives, without loading anything (None: not
    known without loading, as for files and downloaded sets)."""
    if name not in _SOURCES:
        return None
    if name in ("mnist", "fashion_mnist"):
        return 60_000
    if name == "digits":
        return 1_797 - DIGITS_TEST_SIZE
    return int(0.8 * options.get("num_samples", dict(_SOURCES["mnist1d"].defaults)["num_samples"]))


def list_datasets() -> list[str]:
    """The built-in names accepted by :func:`load`, sorted (``KERAS_DATASETS``, ``tfds:<name>`` and files
    are accepted too)."""
    return sorted(_SOURCES)


def kind_of(name: Any) -> str:
    """Which source ``load(name)`` reads: "builtin", "file" (a .npz / .csv / .parquet path), "keras" or "tfds".

    Raises:
        ValueError: none of them (the message lists what is accepted).
    """
    if isinstance(name, os.PathLike) or (isinstance(name, str) and sources.file_kind(name)):
        return "file"
    if name in _SOURCES:
        return "builtin"
    if name in sources.KERAS_DATASETS:
        return "keras"
    if sources.is_tfds(name) and len(name) > len(sources.TFDS_PREFIX):
        return "tfds"
    if name in sources.KERAS_UNSUPPORTED:
        raise checks.invalid("name", f"a data set of arrays (keras.datasets.{name} {sources.KERAS_UNSUPPORTED[name]})",
                             name)
    raise checks.invalid("name", f"one of {', '.join(list_datasets())}, a keras.datasets name "
                         f"({', '.join(KERAS_DATASETS)}), 'tfds:<name>' or a path to a .npz, .csv or .parquet file",
                         name)


def natural_task(name: Any) -> str:
    """The task of a named data set ("regression" for keras' housing sets); files and arrays may be either."""
    if kind_of(name) == "keras":
        return sources.KERAS_DATASETS[name][0]
    return tasks.CLASSIFICATION


def _options_kind(name: Any) -> str:
    kind = kind_of(name)
    return sources.file_kind(name) if kind == "file" else kind


def dataset_options(name: Any) -> tuple[str, ...]:
    """The keyword options ``load(name, ...)`` accepts (e.g. ``('data_dir', 'flatten')``), besides ``task``."""
    if kind_of(name) == "builtin":
        return tuple(sorted(_source(name).options + ("flatten",)))
    return tuple(sorted(sources.options_of(_options_kind(name), str(name))))


def check_options(name: Any, task: str | None = None, **options: Any) -> None:
    """Raise the ValueError :func:`load` would raise for these options, without loading anything."""
    kind = kind_of(name)
    _check_task(name, kind, task)
    if kind == "builtin":
        _resolve_options(name, options)
    else:
        sources.check_options(_options_kind(name), str(name), options)


def _check_task(name: Any, kind: str, task: str | None) -> str:
    natural = natural_task(name)
    if task is None:
        return natural
    tasks.check(task)
    if kind in ("builtin", "keras") and task != natural:
        raise checks.invalid("task", f"{natural!r} ({name} is a {natural} data set)", task)
    return task


def _source(name: str) -> _Source:
    if name not in _SOURCES:
        raise checks.invalid("name", f"one of {', '.join(list_datasets())}", name)
    return _SOURCES[name]


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


@functools.lru_cache(maxsize=8)
def _cached_raw(kind: str, name: str, stamp: Any, options: tuple[tuple[str, Any], ...]) -> sources.Raw:
    """The raw arrays of a file, keras or tfds source (``stamp``: a file's size and mtime, so an edit reloads)."""
    opts = dict(options)
    if kind == "file":
        if sources.file_kind(name) == "npz":
            return sources.read_npz(name)
        return sources.read_table(name, opts["target"], opts["features"], opts["task"])
    if kind == "keras":
        return sources.read_keras(name, opts.get("label_mode"))
    return sources.read_tfds(name, opts["train_split"], opts["test_split"], opts["data_dir"])


def clear_cache() -> None:
    """Forget the arrays cached by :func:`load` (frees their memory)."""
    _cached_arrays.cache_clear()
    _cached_raw.cache_clear()


def load(name: str | os.PathLike, *, task: str | None = None, **options: Any) -> Dataset:
    """Load a data set by name or path (cached in-process; arrays are read-only).

    Args:
        name: a built-in name (:func:`list_datasets`: ``mnist``, ``fashion_mnist``, ``mnist1d``,
            ``digits``), a ``keras.datasets`` name (``KERAS_DATASETS``: ``cifar10``, ...),
            ``tfds:<name>`` (needs ``tensorflow_datasets``) or the path of a ``.npz``, ``.csv`` or
            ``.parquet`` file (:mod:`ablation.data.sources` says what each holds).
        task: "classification" or "regression"; default the data set's own (classification for
            files, regression for keras' housing sets).
        **options: see :func:`dataset_options`.
            flatten (all): inputs as ``(d,)``; built-in sets default True (False keeps ``(H, W, 1)`` /
                ``(40, 1)``), every other source False (inputs keep their shape).
            data_dir (mnist, fashion_mnist): a folder of the four IDX files, gzipped or not; default
                the environment variable ``ABLATION_MNIST_DIR`` / ``ABLATION_FASHION_MNIST_DIR``,
                else Keras' downloader.
            num_samples (mnist1d, default 5000): examples generated, a multiple of 10; 80% train.
            seed (mnist1d, default 42, the package's): generator seed.
            standardize (files, keras, tfds, default False): scale every input feature to mean 0
                and standard deviation 1 with the training split's statistics.
            target, features, test_fraction (CSV / Parquet): the target column (required), the
                input columns (default: all others), the fraction of rows held out as the test set
                (default 0.2; stratified for classification, seed 0).
            label_mode (cifar100): "fine" (default) or "coarse".
            train_split, test_split, data_dir (tfds): the splits (default "train", "test") and
                tensorflow_datasets' data folder.

    Returns:
        A :class:`Dataset` without validation data (see :meth:`Dataset.validation_split`), except for
        a ``.npz`` file with ``x_val`` and ``y_val``.
    """
    kind = kind_of(name)
    task = _check_task(name, kind, task)
    if kind == "builtin":
        flatten, key = _resolve_options(name, options)
        x_train, y_train, x_test, y_test = _cached_arrays(name, key)
        sample_shape = x_train.shape[1:]
        input_shape = (int(np.prod(sample_shape)),) if flatten else sample_shape + (1,)
        return Dataset(x_train=x_train.reshape((-1,) + input_shape), y_train=y_train,
                       x_test=x_test.reshape((-1,) + input_shape), y_test=y_test,
                       num_classes=10, input_shape=tuple(int(d) for d in input_shape), name=name)
    opts = sources.check_options(_options_kind(name), str(name), options)
    if kind == "file":
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no such data file")
        stat = path.stat()
        stamp, shown, name = (stat.st_size, stat.st_mtime_ns), path.name, str(path)
    else:
        stamp, shown = None, str(name)
    read = {k: opts[k] for k in ("target", "features", "label_mode", "train_split", "test_split", "data_dir")
            if k in opts}
    if "target" in read:
        read["task"] = task
    raw = _cached_raw(kind, str(name), stamp, tuple(sorted(read.items())))
    return _finish(raw, shown, task, flatten=opts["flatten"], standardize=opts["standardize"],
                   test_fraction=opts.get("test_fraction", sources.DEFAULT_TEST_FRACTION))


def from_arrays(x_train: Any, y_train: Any, x_test: Any, y_test: Any, x_val: Any = None, y_val: Any = None, *,
                task: str = tasks.CLASSIFICATION, name: str = "arrays", flatten: bool = False,
                standardize: bool = False) -> Dataset:
    """A :class:`Dataset` of arrays you hold (checked and converted as :func:`load` does with a ``.npz``).

    Args:
        x_train, y_train, x_test, y_test: inputs (numbers, one row per example) and targets (int
            labels ``0..k-1`` for classification; floats ``(n,)`` or ``(n, t)`` for regression).
        x_val, y_val: an optional validation set of your own (both or neither).
        task: "classification" or "regression".
        name: the data set's name in messages and reports.
        flatten, standardize: as for :func:`load`.
    """
    arrays = x_train if isinstance(x_train, sources.Arrays) else sources.Arrays.of(x_train, y_train, x_test, y_test,
                                                                                   x_val, y_val)
    checks.boolean("flatten", flatten)
    checks.boolean("standardize", standardize)
    return _finish(sources.Raw(**arrays.arrays), name, tasks.check(task), flatten=flatten, standardize=standardize,
                   test_fraction=sources.DEFAULT_TEST_FRACTION)


def load_spec(d: Any) -> Dataset:
    """The data set a study's ``[data]`` names (an ``ablation.spec.DataSpec``): its file, arrays or name."""
    if d.arrays is not None:
        return from_arrays(d.arrays, None, None, None, task=d.task, **d.options)
    return load(d.file if d.file is not None else d.name, task=d.task, **d.options)


# --------------------------------------------------------------------------- one form for every source


def _finish(raw: sources.Raw, name: str, task: str, *, flatten: bool, standardize: bool,
            test_fraction: float) -> Dataset:
    """Check and convert a source's arrays: targets for the task, float32 inputs, the test split if missing."""
    splits = {"train": (raw.x_train, raw.y_train), "test": (raw.x_test, raw.y_test), "val": (raw.x_val, raw.y_val)}
    ys = {s: _targets(y, f"y_{s}", name, task) for s, (_, y) in splits.items() if y is not None}
    xs = {s: _inputs(x, f"x_{s}", name) for s, (x, _) in splits.items() if x is not None}
    for s in xs:
        if len(xs[s]) != len(ys[s]):
            raise ValueError(f"{name}: x_{s} has {len(xs[s])} examples but y_{s} has {len(ys[s])}")
        if xs[s].shape[1:] != xs["train"].shape[1:]:
            raise ValueError(f"{name}: x_{s} examples have shape {xs[s].shape[1:]}, x_train examples "
                             f"{xs['train'].shape[1:]}")
        if task == tasks.REGRESSION and ys[s].shape[1:] != ys["train"].shape[1:]:
            raise ValueError(f"{name}: y_{s} has {ys[s].shape[1]} targets per example, y_train {ys['train'].shape[1]}")
    if len(xs["train"]) < 2:
        raise ValueError(f"{name}: x_train has {len(xs['train'])} examples; a data set needs at least 2")
    num_classes = 0
    if task == tasks.CLASSIFICATION:
        num_classes = int(max(int(y.max()) for y in ys.values() if len(y))) + 1
        if num_classes < 2:
            raise ValueError(f"{name}: every label is 0; classification needs at least 2 classes")
    if "test" not in xs:
        n = len(ys["train"])
        size = min(n - 1, max(1, round(test_fraction * n)))
        held = _holdout(ys["train"], size, _TEST_SPLIT_SEED, num_classes, task)
        keep = np.setdiff1d(np.arange(n), held, assume_unique=True)
        xs["test"], ys["test"] = xs["train"][held], ys["train"][held]
        xs["train"], ys["train"] = xs["train"][keep], ys["train"][keep]
    if raw.scale:
        xs = {s: x / np.float32(raw.scale) for s, x in xs.items()}
    if standardize:
        mean, std = xs["train"].mean(axis=0), xs["train"].std(axis=0)
        std = np.where(std > 0, std, 1.0).astype(np.float32)
        xs = {s: ((x - mean) / std).astype(np.float32) for s, x in xs.items()}
    if flatten:
        xs = {s: x.reshape(len(x), -1) for s, x in xs.items()}
    xs = {s: _readonly(np.ascontiguousarray(x, dtype=np.float32)) for s, x in xs.items()}
    ys = {s: _readonly(y) for s, y in ys.items()}
    return Dataset(x_train=xs["train"], y_train=ys["train"], x_test=xs["test"], y_test=ys["test"],
                   x_val=xs.get("val"), y_val=ys.get("val"), num_classes=num_classes,
                   input_shape=tuple(int(d) for d in xs["train"].shape[1:]), name=name, task=task)


def _inputs(x: Any, key: str, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{name}: {key} holds {x.dtype} values; expected numbers")
    if x.ndim == 0:
        raise ValueError(f"{name}: {key} is a scalar; expected one row per example")
    x = x.reshape(len(x), 1) if x.ndim == 1 else x
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: {key} holds NaN or infinite values")
    return x


def _targets(y: Any, key: str, name: str, task: str) -> np.ndarray:
    """Classification: int64 labels ``(n,)``, each an integer >= 0; regression: finite float32 ``(n, t)``."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        hint = " (text labels are numbered for CSV / Parquet files only)" if task == tasks.CLASSIFICATION else ""
        raise ValueError(f"{name}: {key} holds {y.dtype} values; expected numbers{hint}")
    if task == tasks.REGRESSION:
        if y.ndim not in (1, 2):
            raise ValueError(f"{name}: {key} has shape {y.shape}; regression targets are (n,) or (n, t)")
        y = y.reshape(len(y), -1).astype(np.float32)
        if not np.isfinite(y).all():
            raise ValueError(f"{name}: {key} holds NaN or infinite values")
        return y
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name}: {key} has shape {y.shape}; classification labels are one integer per example, "
                         f"shape (n,) (one-hot labels: take their argmax)")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.all(y == np.round(y))):
        raise ValueError(f"{name}: {key} holds non-integer values; classification labels are integers 0..k-1 "
                         f"(for float targets set task = \"regression\")")
    if len(y) and y.min() < 0:
        raise ValueError(f"{name}: {key} holds negative labels; classification labels are integers 0..k-1")
    return y.astype(np.int64)
