"""JAX specifics: probe gradients with ``jax.value_and_grad`` over ``stateless_call``, training steps
scanned in one compiled program, devices, threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import keras


def compile_probe(model: Any, loss_fn: Callable, grad_variables: Sequence[Any],
                  stats_fn: Callable[[list, list], Any], want_grads: bool) -> Callable[[Any, Any], Any]:
    """``(x, y) -> stats_fn(outputs, grads)``, jitted; grads of ``loss_fn(y, outputs)`` w.r.t. ``grad_variables``.

    The model runs through ``stateless_call`` with the variables' current values (read at each
    call), so the function is pure and measures the weights as they are at that moment. The
    statistics run in a ``StatelessScope`` holding the same values: a statistic that reads a variable
    itself (the weight probe reads kernels) gets the traced value, not the value the variable had
    when the function was first traced (jit would bake that in as a constant).
    """
    trainable, non_trainable = list(model.trainable_variables), list(model.non_trainable_variables)
    index = {id(v): i for i, v in enumerate(trainable)}
    missing = [v.path for v in grad_variables if id(v) not in index]
    if missing:
        raise ValueError(f"gradients are taken w.r.t. trainable variables of the probe model; not: {missing}")
    wanted = [index[id(v)] for v in grad_variables]

    def forward(tr: list, ntr: list, x: Any) -> list:
        outs, _ = model.stateless_call(tr, ntr, x, training=False)
        return list(outs) if isinstance(outs, (list, tuple)) else [outs]

    def stats(tr: list, ntr: list, outs: list, grads: list) -> Any:
        with keras.StatelessScope(state_mapping=list(zip(trainable + non_trainable, tr + ntr))):
            return stats_fn(outs, grads)

    def run(tr: list, ntr: list, x: Any, y: Any) -> Any:
        if not want_grads:
            return stats(tr, ntr, forward(tr, ntr, x), [])

        def loss(tr_: list) -> tuple[Any, list]:
            outs = forward(tr_, ntr, x)
            return loss_fn(y, outs), outs

        (_, outs), g = jax.value_and_grad(loss, has_aux=True)(tr)
        return stats(tr, ntr, outs, [g[i] for i in wanted])

    jitted = jax.jit(run)
    return lambda x, y: jitted([v.value for v in trainable], [v.value for v in non_trainable], x, y)


def gpus() -> list[str]:
    return [str(d) for d in jax.devices() if d.platform == "gpu"]


def set_threads(n: int) -> None:
    """XLA's CPU thread pool is sized when JAX starts: the command line sets it before (``jax_threads``)."""


def sync(model: Any) -> None:
    """Make the model's variables current inside ``fit``: Keras' JAX trainer keeps the training state
    apart during an epoch and writes it back at epoch ends, or when a callback asks (this)."""
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


SCAN_NEEDS_FULL_BATCHES = False  # a last, smaller batch is a chunk of its own (compiled once more)


def scan_train_function(model: Any) -> Callable[[Any, Any], tuple[Any, Any]]:
    """A ``train_function`` for Keras' JAX ``fit`` that runs a chunk of steps in one compiled program.

    Each item the data yields is a chunk: every array stacked over ``k`` steps (leading axis). The
    returned function takes the chunk and runs ``model.train_step`` over its steps with
    ``jax.lax.scan`` inside one ``jax.jit`` (the training state is the scan's carry), returning the
    last step's logs and the new state, as Keras' own function does for one step. Keras' own path
    with ``steps_per_execution = k`` calls a compiled step ``k`` times from Python, each call
    flattening the whole state (hundreds of arrays in a pack) and converting one batch; measured on
    this project's 2-core machine (benchmarks/bench_training.py) the scan runs the quickstart MLP's
    steps 1.2x (alone) to 1.6x (a pack of 16) faster, and leaves the per-step data path out.

    Install it after ``compile`` and after the model's compiled metrics and loss are built (on one
    unstacked batch: ``fit`` builds them from the first item, which here is a chunk).
    """
    def scan(state: Any, chunk: Any) -> tuple[Any, Any]:
        def body(carry: Any, batch: Any) -> tuple[Any, Any]:
            logs, carry = model.train_step(carry, batch)
            return carry, logs

        state, logs = jax.lax.scan(body, state, chunk)
        return jax.tree_util.tree_map(lambda v: v[-1], logs), state

    jitted = jax.jit(scan, donate_argnums=0)

    def train_function(state: Any, iterator: Any) -> tuple[Any, Any]:
        return jitted(state, next(iterator))

    return train_function
