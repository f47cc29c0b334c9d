"""Why convolutional models do not run scanned chunks on a CPU (``ablation.train.training.scan_suits``).

The keras.io "Simple MNIST convnet" (Conv2D 32 - MaxPool - Conv2D 64 - MaxPool - Flatten - Dropout -
Dense), batch 128, random 28x28 images, under JAX, one process: ms per training step for

- ``fit``: plain ``model.fit`` (Keras' own loop, one jitted step per batch);
- ``jit step``: the model's ``train_step`` jitted once and called from Python per batch;
- ``scan``: a chunk of ``--steps`` steps in one ``jax.lax.scan`` inside one ``jax.jit`` (the runner's
  packed path for MLPs), and the same loop fully unrolled.

Each figure is the median of ``--repeats`` timed chunks after a warm-up call; the ratios against
``jit step`` are what to read (the machine is shared). The quickstart MLP is timed the same way for
contrast: its scan is the fast path.

    python benchmarks/bench_conv_scan.py [--steps 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402


def _convnet() -> tuple[list, tuple, int]:
    return ([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
             layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(), layers.Dropout(0.5),
             layers.Dense(10, activation="softmax")], (28, 28, 1), 128)


def _mlp() -> tuple[list, tuple, int]:
    return ([keras.Input((40,)), layers.Dense(100, activation="relu"), layers.Dropout(0.3),
             layers.Dense(100, activation="relu"), layers.Dense(10, activation="softmax")], (40,), 100)


def _time(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def measure(build, steps: int, repeats: int) -> dict[str, float]:
    layer_list, shape, batch = build()
    rng = np.random.default_rng(0)
    x = rng.random((steps * batch, *shape), dtype=np.float32)
    y = rng.integers(0, 10, steps * batch)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(layer_list)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    out = {"fit": _time(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), repeats) / steps}
    state = jax.tree_util.tree_map(lambda v: v.value, (model.trainable_variables, model.non_trainable_variables,
                                                      model.optimizer.variables, model.metrics_variables))
    xs, ys = x.reshape(steps, batch, *shape), y.reshape(steps, batch)

    step = jax.jit(lambda s, b: model.train_step(s, b)[1])
    holder = {"s": step(state, (xs[0], ys[0]))}

    def loop() -> None:
        s = holder["s"]
        for i in range(steps):
            s = step(s, (xs[i], ys[i]))
        holder["s"] = jax.block_until_ready(s)

    out["jit step"] = _time(loop, repeats) / steps

    def body(carry, b):
        logs, carry = model.train_step(carry, b)
        return carry, logs

    for name, unroll in (("scan", 1), ("scan unrolled", steps)):
        scan = jax.jit(lambda s, c, u=unroll: jax.lax.scan(body, s, c, unroll=u)[0])
        holder["s"] = jax.block_until_ready(scan(holder["s"], (xs, ys)))

        def chunk(scan=scan) -> None:
            holder["s"] = jax.block_until_ready(scan(holder["s"], (xs, ys)))

        out[name] = _time(chunk, repeats) / steps
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.steps < 1 or args.repeats < 1:
        p.exit(2, f"error: --steps and --repeats: expected positive integers. Received: {args.steps}, "
                  f"{args.repeats}\n")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
          f"keras {keras.__version__}")
    for name, build in (("keras.io convnet", _convnet), ("quickstart-like MLP", _mlp)):
        r = measure(build, args.steps, args.repeats)
        ref = r["jit step"]
        print(f"{name}: " + ", ".join(f"{k} {v * 1000:.2f} ms/step ({v / ref:.2f}x)" for k, v in r.items()))


if __name__ == "__main__":
    main()
