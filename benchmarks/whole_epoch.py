"""The reference every training path is held to: one hand-written, compiled loop over a whole epoch of
stacked batches (``tf.function(jit_compile=True)`` on TensorFlow, ``jax.jit`` of a ``fori_loop`` on
JAX), no callbacks, no bookkeeping. Shared by bench_training.py and bench_models.py."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def epoch_runner(model, opt, loss_fn, xs: np.ndarray, ys: np.ndarray) -> Callable[[np.ndarray], float]:
    """``run(order)`` trains one epoch over the batches ``xs[order], ys[order]`` (shape ``(steps, batch,
    ...)``) and returns the last batch's loss (regularization losses included). ``opt`` must be built."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def epoch(x, y):
            loss = tf.constant(0.0)
            for i in tf.range(tf.shape(x)[0]):
                with tf.GradientTape() as tape:
                    loss = loss_fn(y[i], model(x[i], training=True)) + tf.add_n([0.0] + model.losses)
                opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        def run(order):
            return float(epoch(tf.constant(xs[order]), tf.constant(ys[order])))

        return run

    import jax

    def loss_of(tv, ntv, x, y):
        out, ntv = model.stateless_call(tv, ntv, x, training=True)
        return loss_fn(y, out), ntv

    @jax.jit
    def jax_epoch(state, x, y):
        def body(i, carry):
            tv, ntv, ov, _ = carry
            (loss, ntv), grads = jax.value_and_grad(loss_of, has_aux=True)(tv, ntv, x[i], y[i])
            tv, ov = opt.stateless_apply(ov, grads, tv)
            return tv, ntv, ov, loss
        return jax.lax.fori_loop(0, x.shape[0], body, (*state, 0.0))

    state = [[v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in opt.variables]]

    def run(order):
        nonlocal state
        *state, loss = jax_epoch(state, xs[order], ys[order])
        return float(loss)

    return run
