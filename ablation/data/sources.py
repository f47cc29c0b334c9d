"""Data sources besides the built-in sets: your files, ``keras.datasets``, ``tensorflow_datasets``, arrays.

Each reader returns raw NumPy arrays (:class:`Raw`); :func:`ablation.data.load` turns them into a
:class:`~ablation.data.Dataset` (targets checked for the task, inputs as float32, the optional
test split and standardization) the same way for every source.

==================  ========================================================================
source              how it is named and read
==================  ========================================================================
``.npz``            a path; arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` and
                    optionally ``x_val``, ``y_val`` (then the validation set is the file's)
CSV / Parquet       a path (``.csv``, ``.parquet`` / ``.pq``) read with pandas; ``target`` names
                    the target column, ``features`` the input columns (default: every other
                    column; each must be numeric); ``test_fraction`` of the rows (stratified for
                    classification, seed 0) is the test set. Parquet needs pyarrow or fastparquet.
keras.datasets      a name from :data:`KERAS_DATASETS` (downloaded by Keras on first use into
                    ``~/.keras/datasets``); images are scaled to [0, 1]
tensorflow_datasets ``tfds:<name>``, when the package is installed (``train_split``, ``test_split``);
                    images (uint8) are scaled to [0, 1]
arrays              from Python: ``data.from_arrays(...)`` or ``ablation.Study(data=(x_train, ...))``
==================  ========================================================================

Files and arrays are identified by the SHA-256 of their bytes (:func:`digest_file`,
:func:`digest_arrays`), which goes into a study's hash: editing the file starts a new run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from ablation.base import checks

FILE_KINDS = {".npz": "npz", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_VALIDATION = ("x_val", "y_val")
TFDS_PREFIX = "tfds:"
DEFAULT_TEST_FRACTION = 0.2
REQUIRED = object()  # marks an option without a default
# keras.datasets whose load_data() gives arrays of one shape: name -> (natural task, images in [0, 255]).
KERAS_DATASETS: dict[str, tuple[str, bool]] = {
    "cifar10": ("classification", True),
    "cifar100": ("classification", True),
    "mnist": ("classification", True),
    "fashion_mnist": ("classification", True),
    "boston_housing": ("regression", False),
    "california_housing": ("regression", False),
}
KERAS_UNSUPPORTED = {
    "imdb": "holds variable-length sequences of word indices, not arrays of one shape",
    "reuters": "holds variable-length sequences of word indices, not arrays of one shape",
}
COMMON_OPTIONS = {"flatten": False, "standardize": False}
TABLE_OPTIONS = {"target": REQUIRED, "features": None, "test_fraction": DEFAULT_TEST_FRACTION}
# Options each kind of source accepts, with their defaults.
OPTIONS: dict[str, dict[str, Any]] = {
    "npz": dict(COMMON_OPTIONS),
    "csv": {**COMMON_OPTIONS, **TABLE_OPTIONS},
    "parquet": {**COMMON_OPTIONS, **TABLE_OPTIONS},
    "keras": dict(COMMON_OPTIONS),
    "tfds": {**COMMON_OPTIONS, "train_split": "train", "test_split": "test", "data_dir": None},
    "arrays": dict(COMMON_OPTIONS),
}
KERAS_EXTRA_OPTIONS = {"cifar100": {"label_mode": "fine"}}


@dataclasses.dataclass(frozen=True, eq=False)
class Raw:
    """A source's arrays as read: ``x_test``/``y_test`` None when the test set is still to be split off;
    ``scale`` divides the inputs (255 for uint8 images); ``classes`` names the labels of a text column."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    scale: float | None = None
    classes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Arrays:
    """Arrays given in memory (from Python), with the SHA-256 that identifies them in a study's hash."""

    arrays: dict[str, np.ndarray]
    digest: str

    @classmethod
    def of(cls, x_train: Any, y_train: Any, x_test: Any, y_test: Any, x_val: Any = None, y_val: Any = None) -> Arrays:
        """Wrap the arrays (as NumPy arrays, read-only copies) and hash them."""
        given = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, "x_val": x_val,
                 "y_val": y_val}
        if (x_val is None) != (y_val is None):
            raise checks.invalid("x_val", "x_val and y_val both given or both None", None,
                                 shown=f"x_val={'None' if x_val is None else 'array'}, "
                                       f"y_val={'None' if y_val is None else 'array'}")
        arrays = {}
        for key, value in given.items():
            if value is None:
                continue
            array = np.array(value, copy=True)
            if array.dtype == object or array.ndim == 0:
                raise checks.invalid(key, "an array of numbers (one row per example)", value,
                                     shown=f"{type(value).__name__} of dtype {array.dtype}, shape {array.shape}")
            array.flags.writeable = False
            arrays[key] = array
        return cls(arrays, digest_arrays(arrays))

    @property
    def has_validation(self) -> bool:
        return "x_val" in self.arrays

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.arrays.items())
        return f"Arrays({shapes}, sha256={self.digest[:12]})"


# --------------------------------------------------------------------------- naming


def file_kind(path: str | os.PathLike) -> str | None:
    """"npz", "csv" or "parquet" for a path with one of ``FILE_KINDS``' suffixes, else None."""
    return FILE_KINDS.get(Path(str(path)).suffix.lower())


def is_tfds(name: str) -> bool:
    return isinstance(name, str) and name.startswith(TFDS_PREFIX)


def tfds_installed() -> bool:
    """Whether ``tensorflow_datasets`` can be imported (checked without importing it)."""
    return importlib.util.find_spec("tensorflow_datasets") is not None


def options_of(kind: str, name: str = "") -> dict[str, Any]:
    """The options a source of ``kind`` ("npz", "csv", "parquet", "keras", "tfds", "arrays") accepts, with defaults."""
    return {**OPTIONS[kind], **(KERAS_EXTRA_OPTIONS.get(name, {}) if kind == "keras" else {})}


def check_options(kind: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Validate a source's options; returns them with defaults filled in (the package's ValueError otherwise)."""
    allowed = options_of(kind, name)
    for key in options:
        if key not in allowed:
            raise ValueError(f"Unknown option {key!r} for data set {name!r}: expected one of "
                             f"{tuple(sorted(allowed))}. Received: {key}={options[key]!r}")
    out = {**allowed, **options}
    for key in ("flatten", "standardize"):
        checks.boolean(key, out[key])
    if "target" in allowed:
        if out["target"] is REQUIRED:
            raise ValueError(f"{checks.PREFIX} 'target': expected the name of the target column (required for "
                             f"a {kind.upper()} file). Received: nothing")
        checks.text("target", out["target"])
        if out["features"] is not None:
            features = out["features"]
            if isinstance(features, str) or not isinstance(features, (list, tuple)) or not features or \
                    not all(isinstance(f, str) and f for f in features) or len(set(features)) != len(features):
                raise checks.invalid("features", "a non-empty list of distinct column names", features)
            if out["target"] in features:
                raise checks.invalid("features", f"columns other than the target {out['target']!r}", features)
            out["features"] = tuple(features)
        checks.open_unit_interval("test_fraction", out["test_fraction"])
    if kind == "tfds":
        checks.text("train_split", out["train_split"])
        checks.text("test_split", out["test_split"])
        if out["data_dir"] is not None:
            checks.text("data_dir", out["data_dir"])
    if "label_mode" in allowed:
        checks.choice("label_mode", out["label_mode"], ("fine", "coarse"))
    return out


# --------------------------------------------------------------------------- digests


def digest_file(path: str | os.PathLike) -> str:
    """SHA-256 hex of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def digest_arrays(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 hex of named arrays: names, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- files


def inspect_file(path: str | os.PathLike) -> dict[str, Any]:
    """What a data file holds, read cheaply (no arrays loaded): ``{"kind", "keys" | "columns"}``.

    Raises:
        ValueError: an unknown suffix, a file that cannot be read, an ``.npz`` without the four
            arrays (or with only one of x_val / y_val).
    """
    path = Path(path)
    kind = file_kind(path)
    if kind is None:
        raise ValueError(f"{path.name}: expected a .npz, .csv or .parquet file")
    if kind == "npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                keys = tuple(f.files)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{path.name}: cannot be read as .npz ({type(exc).__name__}: {_line(exc)})") from None
        missing = [k for k in NPZ_KEYS if k not in keys]
        if missing:
            raise ValueError(f"{path.name}: missing array(s) {', '.join(missing)}; a .npz data set holds "
                             f"{', '.join(NPZ_KEYS)} (and optionally {', '.join(NPZ_VALIDATION)}). "
                             f"It holds: {', '.join(keys) or 'nothing'}")
        if ("x_val" in keys) != ("y_val" in keys):
            raise ValueError(f"{path.name}: holds only one of x_val, y_val; a validation set needs both")
        return {"kind": kind, "keys": keys}
    if kind == "csv":
        import pandas as pd

        try:
            columns = tuple(str(c) for c in pd.read_csv(path, nrows=0).columns)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path.name}: cannot be read as CSV ({type(exc).__name__}: {_line(exc)})") from None
        return {"kind": kind, "columns": columns}
    try:
        import pyarrow.parquet as pq  # noqa: F401
    except ImportError:
        return {"kind": kind, "columns": None}  # read (and its error given) when the study runs
    try:
        columns = tuple(pq.read_schema(path).names)
    except Exception as exc:  # noqa: BLE001 - any parquet error is a bad file here
        raise ValueError(f"{path.name}: cannot be read as Parquet ({type(exc).__name__}: {_line(exc)})") from None
    return {"kind": kind, "columns": columns}


def read_npz(path: str | os.PathLike) -> Raw:
    """The arrays of a ``.npz`` data set (``allow_pickle=False``: object arrays are refused)."""
    path = Path(path)
    inspect_file(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in (*NPZ_KEYS, *NPZ_VALIDATION) if k in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path.name}: cannot be read as .npz ({type(exc).__name__}: {_line(exc)})") from None
    return Raw(**arrays)


def read_table(path: str | os.PathLike, target: str, features: tuple[str, ...] | None, task: str) -> Raw:
    """A CSV or Parquet file as inputs (the feature columns) and targets (the target column); no test split yet.

    Classification targets may be integers or text (classes numbered in sorted order); every
    feature column must be numeric and complete.
    """
    import pandas as pd

    path = Path(path)
    kind = file_kind(path)
    try:
        if kind == "csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
    except ImportError as exc:
        raise ValueError(f"{path.name}: reading Parquet needs pyarrow or fastparquet (pip install pyarrow): "
                         f"{_line(exc)}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name}: cannot be read ({type(exc).__name__}: {_line(exc)})") from None
    frame.columns = [str(c) for c in frame.columns]
    columns = list(frame.columns)
    if target not in columns:
        raise ValueError(f"{path.name}: no column {target!r} (data.target); its columns: {', '.join(columns)}")
    features = list(features) if features is not None else [c for c in columns if c != target]
    missing = [c for c in features if c not in columns]
    if missing:
        raise ValueError(f"{path.name}: no column(s) {', '.join(map(repr, missing))} (data.features); its columns: "
                         f"{', '.join(columns)}")
    if not features:
        raise ValueError(f"{path.name}: no feature columns besides the target {target!r}")
    bad = [f"{c!r} ({frame[c].dtype})" for c in features
           if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if bad:
        raise ValueError(f"{path.name}: feature column(s) {', '.join(bad)} are not numeric; encode them as numbers "
                         f"(e.g. one column per category) or leave them out with data.features")
    holes = [f"{c!r} ({int(n)} missing)" for c, n in frame[features].isna().sum().items() if n]
    if holes:
        raise ValueError(f"{path.name}: feature column(s) {', '.join(holes)} have missing values; fill or drop them")
    y = frame[target]
    if y.isna().any():
        raise ValueError(f"{path.name}: the target column {target!r} has {int(y.isna().sum())} missing values")
    classes: tuple[str, ...] = ()
    if task == "classification" and not (pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y)):
        classes = tuple(sorted(str(v) for v in y.unique()))
        y = y.astype(str).map({c: i for i, c in enumerate(classes)})
    elif task == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise ValueError(f"{path.name}: the target column {target!r} is not numeric ({y.dtype}); a regression "
                         f"target must be")
    return Raw(x_train=frame[features].to_numpy(dtype=np.float32), y_train=y.to_numpy(), classes=classes)


# --------------------------------------------------------------------------- keras.datasets, tfds


def read_keras(name: str, label_mode: str | None = None) -> Raw:
    """``keras.datasets.<name>.load_data()`` (downloads on first use); a failure is one line with advice."""
    import keras

    try:
        module = getattr(keras.datasets, name)
        loaded = module.load_data(label_mode=label_mode) if label_mode else module.load_data()
    except Exception as err:  # noqa: BLE001 - any download failure gets the same advice
        raise RuntimeError(
            f"Could not load {name} with keras.datasets.{name}.load_data() ({type(err).__name__}: {_line(err)}). "
            f"Keras downloads it into ~/.keras/datasets on first use; without network access, copy the file "
            f"there, or save your arrays as a .npz file and set data.path.") from err
    (x_train, y_train), (x_test, y_test) = loaded
    return Raw(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
               scale=255.0 if KERAS_DATASETS[name][1] else None)


def read_tfds(name: str, train_split: str, test_split: str, data_dir: str | None) -> Raw:
    """A ``tensorflow_datasets`` data set as arrays (``as_supervised``, whole splits in memory)."""
    dataset = name.removeprefix(TFDS_PREFIX)
    if not tfds_installed():
        raise RuntimeError(f"data set {name!r} needs tensorflow_datasets, which is not installed "
                           f"(pip install tensorflow-datasets)")
    import tensorflow_datasets as tfds

    try:
        train, test = tfds.load(dataset, split=[train_split, test_split], as_supervised=True, batch_size=-1,
                                data_dir=data_dir)
        (x_train, y_train), (x_test, y_test) = tfds.as_numpy(train), tfds.as_numpy(test)
    except Exception as err:  # noqa: BLE001 - any tfds failure is one line
        raise RuntimeError(f"Could not load {dataset!r} with tensorflow_datasets ({type(err).__name__}: "
                           f"{_line(err)})") from err
    images = np.asarray(x_train).dtype == np.uint8 and np.asarray(x_train).ndim >= 3
    return Raw(x_train=np.asarray(x_train), y_train=np.asarray(y_train), x_test=np.asarray(x_test),
               y_test=np.asarray(y_test), scale=255.0 if images else None)


def _line(exc: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__
