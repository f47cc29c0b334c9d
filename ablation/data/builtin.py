"""The built-in data sets' readers: MNIST and Fashion-MNIST (a folder of IDX files, else Keras'
downloader), MNIST-1D (generated offline by the ``mnist1d`` package, Greydanus 2020) and
scikit-learn's 8x8 digits. Each returns ``(x_train, y_train, x_test, y_test)``; ``ablation.data``
turns them into a :class:`~ablation.data.dataset.Dataset` (see its table of shapes and values).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import random
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ablation.data.dataset import _stratified_holdout

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
ENV_VARS = {"mnist": "ABLATION_MNIST_DIR", "fashion_mnist": "ABLATION_FASHION_MNIST_DIR"}
DIGITS_TEST_SIZE = 360  # of 1,797 digits; stratified, fixed seed 0 -> 1,437 train / 360 test
DIGITS_SPLIT_SEED = 0


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


MNIST1D_ARRAYS = ("x", "y", "x_test", "y_test")  # the arrays of a cached MNIST-1D file, in load order


def mnist1d_cache_file(num_samples: int, seed: int) -> Path:
    """Where generated MNIST-1D arrays are kept: ``$XDG_CACHE_HOME/keras-ablation/mnist1d`` (default
    ``~/.cache/...``), one file per size, seed and ``mnist1d`` version."""
    from importlib import metadata

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    try:
        version = metadata.version("mnist1d")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return Path(base) / "keras-ablation" / "mnist1d" / f"mnist1d-{version}-n{int(num_samples)}-seed{int(seed)}.npz"


def _load_mnist1d(num_samples: int, seed: int) -> tuple[np.ndarray, ...]:
    """MNIST-1D (Greydanus 2020) generated offline, once per machine: the arrays are kept on disk
    (:func:`mnist1d_cache_file`), since generating 5,000 examples takes seconds in every process that
    loads them (the chief's checks and each worker: 10 of a profiled quickstart dry run's 26 s).
    A file that cannot be read or written is generated again (and not kept)."""
    cached = mnist1d_cache_file(num_samples, seed)
    try:
        with np.load(cached) as z:
            return tuple(z[k] for k in MNIST1D_ARRAYS)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # absent or damaged: generate
        pass
    arrays = _generate_mnist1d(num_samples, seed)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **dict(zip(MNIST1D_ARRAYS, arrays)))
        os.replace(tmp, cached)  # whole or absent: processes generating at once each replace it whole
    except OSError:
        pass
    return arrays


def _generate_mnist1d(num_samples: int, seed: int) -> tuple[np.ndarray, ...]:
    """MNIST-1D generated; restores the global NumPy / random RNG state."""
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
