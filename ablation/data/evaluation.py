"""Evaluation modes: how a trained stochastic network is turned into test predictions.

Every function returns long-form rows ``{"mode", "k", "metric", "value"}`` (the
``evaluations`` frame of docs/internals.md section 4) with metric ``test_error`` and
``test_loss`` (mean cross-entropy of the averaged class probabilities). ``k`` is the number of
stochastic samples averaged; 0 for a deterministic pass.

- `weight_scaling`: the ordinary inference pass (dropout off; for inverted dropout the
  weight scaling happened at training time) (Srivastava et al. 2014, section 7.5).
- `mc_dropout`: Monte-Carlo model averaging: the softmax of k stochastic passes with dropout
  active and batch norm in inference mode, averaged (Srivastava et al. 2014, Fig. 11; claim C5).
- `dropconnect`: weight-scaling inference vs Wan et al. 2013's moment-matched Gaussian sampling
  of each DropConnect layer's pre-activation (Algorithm 2); ``"mc"`` adds the Monte-Carlo
  average over sampled masks.

The stochastic variants are clones of the model that share its layers (and weights) and
replace only the noise layers, so batch norm stays in inference mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from ablation.base import checks
from ablation.zoo import outputs_probabilities

_NOISE_LAYERS = (keras.layers.Dropout, keras.layers.AlphaDropout, keras.layers.GaussianDropout)
DROPCONNECT_MODES = ("scaling", "gaussian", "mc")


class _ForceTraining(keras.layers.Layer):
    """Calls ``inner`` in training mode whatever mode the model runs in (keeps noise on)."""

    def __init__(self, inner: keras.layers.Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.inner(inputs, training=True)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.inner.compute_output_shape(input_shape)


class _PassThrough(keras.layers.Layer):
    """Identity that accepts whatever keyword arguments the layer it replaces was called with."""

    def call(self, inputs: Any, **kwargs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


def _reseeded(layer: keras.layers.Layer, seed: int) -> keras.layers.Layer:
    """A fresh copy of a noise layer with its own seed (same rate, no weights)."""
    config = {**layer.get_config(), "seed": int(seed), "name": layer.name + "_sampler"}
    return type(layer).from_config(config)


def _clone_with(model: keras.Model, replace: dict[str, keras.layers.Layer]) -> keras.Model:
    """Clone ``model`` sharing every layer except those named in ``replace``."""
    if not isinstance(model, (keras.Sequential, keras.Model)) or not hasattr(model, "inputs"):
        raise checks.invalid("model", "a functional or Sequential keras.Model", model)
    return keras.models.clone_model(model, clone_function=lambda layer: replace.get(layer.name, layer))


def _labels(y: Any) -> np.ndarray:
    y = np.asarray(y)
    return np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1).astype(int)


def _check_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x, labels = np.asarray(x), _labels(y)
    if len(x) == 0 or len(x) != len(labels):
        raise checks.invalid("y", f"one target per example of x ({len(x)})", None,
                             shown=f"y with {len(labels)} targets")
    return x, labels


def _check_batch_size(batch_size: Any) -> int:
    return checks.integer("batch_size", batch_size, 1)


def log_softmax(out: np.ndarray, probabilities: bool) -> np.ndarray:
    """Log class probabilities (float64) of a batch of logits, or of probabilities."""
    out = np.asarray(out, dtype=np.float64)
    if probabilities:
        return np.log(np.maximum(out, 1e-300))
    shifted = out - out.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """The model's outputs on ``x`` in inference mode, as NumPy (compiled by the backend, batch by batch)."""
    outs = [ops.convert_to_numpy(model.predict_on_batch(x[start:start + batch_size]))
            for start in range(0, len(x), batch_size)]
    return np.concatenate(outs, axis=0) if outs else np.zeros((0,))


def _prob_fn(model: keras.Model, probabilities: bool) -> Callable[[Any], np.ndarray]:
    """A function x -> log class probabilities (float64) of the model's inference pass."""
    return lambda x: log_softmax(ops.convert_to_numpy(model.predict_on_batch(x)), probabilities)


def _score(logp: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(number of errors, summed negative log-likelihood) of a batch of log class probabilities."""
    return float(np.sum(np.argmax(logp, axis=-1) != labels)), float(-np.sum(logp[np.arange(len(labels)), labels]))


def _rows(mode: str, k: int, errors: float, nll: float, n: int) -> list[dict[str, Any]]:
    return [{"mode": mode, "k": int(k), "metric": "test_error", "value": float(errors / n)},
            {"mode": mode, "k": int(k), "metric": "test_loss", "value": float(nll / n)}]


def _deterministic(mode: str, fn: Callable[[Any], np.ndarray], x: np.ndarray, labels: np.ndarray,
                   batch_size: int, ks: Sequence[int] = (0,)) -> list[dict[str, Any]]:
    """Rows of one deterministic pass (repeated for each k in ``ks``: all passes are equal)."""
    errors = nll = 0.0
    for start in range(0, len(x), batch_size):
        e, l = _score(np.asarray(fn(x[start:start + batch_size]), dtype=np.float64),
                      labels[start:start + batch_size])
        errors, nll = errors + e, nll + l
    return [row for k in ks for row in _rows(mode, k, errors, nll, len(x))]


def weight_scaling(model: keras.Model, x: Any, y: Any, batch_size: int = 1024) -> list[dict[str, Any]]:
    """The ordinary inference pass: dropout off, batch norm on its moving statistics.

    Args:
        model: a trained model returning logits (or softmax probabilities).
        x, y: test inputs and integer (or one-hot) labels.
        batch_size: examples per forward pass.

    Returns:
        Rows with mode ``"weight_scaling"``, k 0, metrics test_error and test_loss.
    """
    x, labels = _check_xy(x, y)
    fn = _prob_fn(model, outputs_probabilities(model))
    return _deterministic("weight_scaling", fn, x, labels, _check_batch_size(batch_size))


def _check_ks(ks: Any) -> list[int]:
    return sorted(checks.int_list("ks", ks, minimum=1))


def _averaged(mode: str, fn: Callable[[Any], np.ndarray], x: np.ndarray, labels: np.ndarray,
              ks: list[int], batch_size: int) -> list[dict[str, Any]]:
    """Average ``max(ks)`` stochastic passes once; score every prefix average of length k."""
    errors, nll = np.zeros(len(ks)), np.zeros(len(ks))
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], labels[start:start + batch_size]
        total = np.zeros((len(xb), 1))
        for j in range(1, ks[-1] + 1):
            total = total + np.exp(np.asarray(fn(xb), dtype=np.float64))
            if j in ks:
                e, l = _score(np.log(np.maximum(total / j, 1e-300)), yb)
                errors[ks.index(j)] += e
                nll[ks.index(j)] += l
    return [row for i, k in enumerate(ks) for row in _rows(mode, k, errors[i], nll[i], len(x))]


def mc_dropout(model: keras.Model, x: Any, y: Any, ks: Sequence[int] = (1, 2, 5, 10, 20, 50, 100),
               seed: int = 0, batch_size: int = 1024) -> list[dict[str, Any]]:
    """Monte-Carlo dropout: average the softmax of k passes with dropout active.

    Srivastava et al. 2014, Fig. 11 (claim C5). Dropout-family layers (Dropout and its
    spatial variants, AlphaDropout, GaussianDropout) sample fresh masks on every pass; every other
    layer runs in inference mode (batch norm uses its moving statistics). One run of
    ``max(ks)`` passes gives every k by prefix averages. A model without dropout layers is
    deterministic: each k then equals the weight-scaled pass.

    Args:
        model: a trained functional or Sequential model returning logits (or probabilities).
        x, y: test inputs and integer (or one-hot) labels.
        ks: numbers of passes to average (ints >= 1).
        seed: seed of the dropout masks (layer j uses ``seed + j``).
        batch_size: examples per forward pass.

    Returns:
        Rows with mode ``"mc_dropout"``, one k per entry of ``ks``, metrics test_error, test_loss.
    """
    x, labels = _check_xy(x, y)
    ks, batch_size = _check_ks(ks), _check_batch_size(batch_size)
    noise = [layer for layer in model.layers if isinstance(layer, _NOISE_LAYERS)]
    probabilities = outputs_probabilities(model)
    if not noise:
        return _deterministic("mc_dropout", _prob_fn(model, probabilities), x, labels, batch_size, ks)
    replace = {layer.name: _ForceTraining(_reseeded(layer, seed + j), name=layer.name)
               for j, layer in enumerate(noise)}
    fn = _prob_fn(_clone_with(model, replace), probabilities)
    return _averaged("mc_dropout", fn, x, labels, ks, batch_size)


class _GaussianDropConnect(keras.layers.Layer):
    """Wan et al. 2013, Algorithm 2: sample the pre-activation from N(mean, var), average after ``post``.

    ``layer.moments(x)`` gives the mean and variance of the DropConnect layer's pre-activation
    under its mask distribution; each of ``num_samples`` draws goes through the following layers
    ``post`` (batch norm in inference mode, the activation) and the results are averaged.
    """

    def __init__(self, layer: keras.layers.Layer, post: list[Any], num_samples: int, seed: int,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner, self.post, self.num_samples = layer, post, num_samples
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        mean, var = self.inner.moments(inputs)
        mean, var = ops.cast(mean, "float32"), ops.cast(var, "float32")
        draws = ops.repeat(ops.expand_dims(mean, 0), self.num_samples, axis=0)  # (k, batch, units)
        eps = keras.random.normal(ops.shape(draws), seed=self.seed_generator)
        u = draws + ops.sqrt(ops.maximum(var, 0.0))[None] * eps
        units = mean.shape[-1]
        flat = ops.reshape(u, (-1, units))
        for layer in self.post:
            flat = ops.cast(layer(flat, training=False), "float32")
        return ops.mean(ops.reshape(flat, (self.num_samples, -1, flat.shape[-1])), axis=0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.inner.compute_output_shape(input_shape)


def _dropconnect_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if callable(getattr(layer, "moments", None))]


def _post_layers(model: keras.Model, name: str) -> tuple[list[str], bool]:
    """Names of the layers between a DropConnect layer and its activation (inclusive).

    Returns:
        (names, needs_softmax): ``needs_softmax`` when ``logits`` has no ``output`` layer after it.
    """
    names = [layer.name for layer in model.layers]
    if name == "logits":
        return (["output"], False) if "output" in names else ([], True)
    i = name.split("_")[-1]
    if not (name.startswith("dense_") and f"act_{i}" in names):
        raise ValueError(f"Invalid value for argument 'model': DropConnect layer '{name}' is not a zoo "
                         f"'dense_i' with an 'act_i' after it (docs/internals.md section 1).")
    if f"bn_{i}" in names and names.index(f"bn_{i}") < names.index(f"act_{i}"):
        return [f"bn_{i}", f"act_{i}"], False
    return [f"act_{i}"], False


def _gaussian_clone(model: keras.Model, num_samples: int, seed: int) -> tuple[keras.Model, bool]:
    """The model with every DropConnect layer replaced by Gaussian moment-matched sampling.

    Returns:
        (clone, outputs_are_probabilities).
    """
    replace: dict[str, keras.layers.Layer] = {}
    probabilities = outputs_probabilities(model)
    for j, layer in enumerate(_dropconnect_layers(model)):
        post_names, needs_softmax = _post_layers(model, layer.name)
        post: list[Any] = [model.get_layer(n) for n in post_names]
        if needs_softmax:
            post, probabilities = [keras.layers.Softmax()], True
        elif layer.name == "logits":
            probabilities = True
        replace[layer.name] = _GaussianDropConnect(layer, post, num_samples, seed + j, name=layer.name)
        replace.update({n: _PassThrough(name=n) for n in post_names})
    return _clone_with(model, replace), probabilities


def _check_modes(modes: Any) -> list[str]:
    modes_list = [modes] if isinstance(modes, str) else list(modes) if isinstance(modes, (list, tuple)) else None
    if not modes_list or any(m not in DROPCONNECT_MODES for m in modes_list):
        raise checks.invalid("modes", f"a non-empty list of {', '.join(DROPCONNECT_MODES)}", modes)
    return modes_list


def dropconnect(model: keras.Model, x: Any, y: Any, modes: Sequence[str] = ("scaling", "gaussian"),
                num_samples: int = 100, seed: int = 0, batch_size: int = 256) -> list[dict[str, Any]]:
    """DropConnect inference: weight scaling vs Gaussian moment matching (Wan et al. 2013).

    Modes: ``"scaling"`` is the model's inference pass (the mean network); ``"gaussian"``
    samples each DropConnect layer's pre-activation ``num_samples`` times from N(mean, var)
    (the layer's ``moments()``), passes the samples through the following bn_i / act_i (or the
    output softmax for ``logits``) and averages before feeding forward (Algorithm 2);
    ``"mc"`` averages the softmax of ``num_samples`` full passes with masks sampled by the layers
    (each DropConnect layer's own mask generator, so not fixed by ``seed``).

    Args:
        model: a trained zoo MLP with DropConnect layers (anything with ``moments()``).
        x, y: test inputs and integer (or one-hot) labels.
        modes: any of ``DROPCONNECT_MODES``.
        num_samples: Gaussian draws per layer (and passes for ``"mc"``).
        seed: seed of the Gaussian draws (layer j uses ``seed + j``).
        batch_size: examples per pass (the Gaussian pass holds num_samples x batch x units).

    A model without DropConnect layers is deterministic: every mode then gives its ordinary
    pass (so a grid with ``dropconnect = 0`` still has rows to compare against).

    Returns:
        Rows with mode ``"dropconnect_<mode>"``, k 0 for scaling and ``num_samples`` otherwise.
    """
    x, labels = _check_xy(x, y)
    modes, batch_size = _check_modes(modes), _check_batch_size(batch_size)
    checks.integer("num_samples", num_samples, 1)
    if not _dropconnect_layers(model):  # deterministic: every mode is the ordinary pass
        fn = _prob_fn(model, outputs_probabilities(model))
        return [row for mode in modes for row in _deterministic(
            f"dropconnect_{mode}", fn, x, labels, batch_size, (0 if mode == "scaling" else num_samples,))]
    rows: list[dict[str, Any]] = []
    for mode in modes:
        if mode == "scaling":
            fn = _prob_fn(model, outputs_probabilities(model))
            rows += _deterministic("dropconnect_scaling", fn, x, labels, batch_size)
        elif mode == "gaussian":
            fn = _prob_fn(*_gaussian_clone(model, num_samples, seed))
            rows += _deterministic("dropconnect_gaussian", fn, x, labels, batch_size, (num_samples,))
        else:
            replace = {layer.name: _ForceTraining(layer, name=layer.name) for layer in _dropconnect_layers(model)}
            fn = _prob_fn(_clone_with(model, replace), outputs_probabilities(model))
            rows += _averaged("dropconnect_mc", fn, x, labels, [num_samples], batch_size)
    return rows
