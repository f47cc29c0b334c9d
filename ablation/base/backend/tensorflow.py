"""TensorFlow specifics: probe gradients with ``tf.GradientTape``, devices and threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

# Each trial builds new models, so TensorFlow's "retracing" warnings are expected noise here.
tf.get_logger().setLevel("ERROR")


def compile_probe(model: Any, loss_fn: Callable, grad_variables: Sequence[Any],
                  stats_fn: Callable[[list, list], Any], want_grads: bool) -> Callable[[Any, Any], Any]:
    """``(x, y) -> stats_fn(outputs, grads)``, compiled with ``tf.function``; grads of ``loss_fn(y, outputs)``."""

    @tf.function
    def run(x: tf.Tensor, y: tf.Tensor) -> Any:
        if not want_grads:
            return stats_fn(_as_list(model(x, training=False)), [])
        with tf.GradientTape() as tape:
            outs = _as_list(model(x, training=False))
            loss = loss_fn(y, outs)
        grads = tape.gradient(loss, list(grad_variables), unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return stats_fn(outs, grads)

    return run


def _as_list(outs: Any) -> list:
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


# Keras' PyDataset adapter fixes the items' shapes from its first items: a last, smaller batch would
# not fit the chunks' shape, so a training set the batch size does not divide trains Keras' way.
SCAN_NEEDS_FULL_BATCHES = True


def scan_train_function(model: Any) -> Callable[[Any], Any]:
    """A ``train_function`` for Keras' TensorFlow ``fit`` that runs a chunk of steps in one compiled program.

    Each item the data yields is a chunk: every array stacked over ``k`` steps (leading axis). The
    returned function runs ``model.train_step`` over the chunk's steps in a ``tf.range`` loop inside
    one ``tf.function`` (XLA-compiled when the model is), returning the last step's logs. Keras' own
    function with ``steps_per_execution = k`` runs a while loop that fetches every step's batch from
    its tf.data iterator (here a Python generator) and calls the compiled step once per batch.

    Install it after ``compile`` and after the model's compiled metrics and loss are built (on one
    unstacked batch: ``fit`` builds them from the first item, which here is a chunk).
    """
    @tf.function(jit_compile=bool(model.jit_compile), reduce_retracing=True)
    def scan(chunk: Any) -> Any:
        logs = model.train_step(tf.nest.map_structure(lambda a: a[0], chunk))
        for i in tf.range(1, tf.shape(tf.nest.flatten(chunk)[0])[0]):
            logs = model.train_step(tf.nest.map_structure(lambda a: a[i], chunk))  # noqa: B023 - traced once
        return logs

    def train_function(iterator: Any) -> Any:
        return scan(next(iterator))

    return train_function


def gpus() -> list[str]:
    return [d.name for d in tf.config.list_physical_devices("GPU")]


def set_threads(n: int) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, n))


def sync(model: Any) -> None:
    """Make the model's variables current inside ``fit`` (TensorFlow updates them in place)."""
