"""A ``.keras`` file as a model function, so that a generated ablation study of a saved model runs
like any study (``[model] factory = "ablation.zoo.parts.saved:load"``).

The file is loaded with Keras' ``safe_mode=True`` (no arbitrary code, such as ``Lambda`` layers, is
deserialized) and without its optimizer; its trained weights are not used, since every variant is a
freshly initialized clone (``ablation.zoo.parts.variants``). The study holds the file's SHA-256: a file
that changed since the study was written is refused, so a run folder always means one architecture.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

REFERENCE = "ablation.zoo.parts.saved:load"


def digest(path: str) -> str:
    """SHA-256 hex of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load(path: str, sha256: str | None = None) -> Any:
    """The model saved in ``path`` (a ``.keras`` file).

    Raises:
        FileNotFoundError: no such file.
        ValueError: its SHA-256 is not ``sha256``.
    """
    import keras

    if not Path(path).is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    if sha256 is not None and digest(path) != sha256:
        raise ValueError(f"Invalid value for argument 'path': expected the file the study was generated from "
                         f"(sha256 {sha256[:12]}); {path} has changed. Received: sha256={digest(path)[:12]}")
    return keras.models.load_model(path, compile=False, safe_mode=True)
