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


# Keras' TensorFlow ``fit`` already runs ``steps_per_execution`` steps in one ``tf.function``
# (a while loop fed by its tf.data iterator): no chunked train function here.
scan_train_function = None


def gpus() -> list[str]:
    return [d.name for d in tf.config.list_physical_devices("GPU")]


def set_threads(n: int) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, n))


def sync(model: Any) -> None:
    """Make the model's variables current inside ``fit`` (TensorFlow updates them in place)."""
