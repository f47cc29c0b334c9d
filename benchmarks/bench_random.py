"""Random masks on this CPU: JAX's draws against TensorFlow's, for the masks the zoo's sampling layers draw per step.

The backend rule (``ablation.engine.backend_choice.rule``) sends per-example sampling layers (DropConnect with a
mask per example, stochastic pooling) to TensorFlow on a CPU-only machine: through the runner DropConnect 2x256
trains at 716 ms/step under JAX and 283 under TensorFlow (``bench_models.py``), and JAX's hand-written
whole-epoch loop is no faster (731 ms). This script shows where the time goes: one jitted draw of each mask,
per backend, with the masked product beside it.

Masks (batch 128 unless said): the per-example DropConnect mask of a 784-256 layer (128 x 784 x 256 uniform
numbers), a per-batch DropConnect mask (784 x 256), and the dropout masks of one step of 784-1024x3-10 with
input dropout (batch 100: 100 x 784 and three 100 x 1024, Bernoulli under JAX as Keras draws them). Each
backend runs in its own process; ms per draw is the median of ``--repeats`` timed calls after one untimed.

    python benchmarks/bench_random.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MASKS = {
    "dropconnect_per_example": [(128, 784, 256)],
    "dropconnect_per_batch": [(784, 256)],
    "dropout_3x1024_step": [(100, 784), (100, 1024), (100, 1024), (100, 1024)],
}


def _timed(fn, repeats: int) -> float:
    fn(0)  # trace and compile
    times = []
    for i in range(1, repeats + 1):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def child_jax(repeats: int) -> dict:
    import jax

    out = {}
    for name, shapes in MASKS.items():
        draw = (lambda k, s: jax.random.bernoulli(k, 0.5, s)) if name.startswith("dropout") else jax.random.uniform
        f = jax.jit(lambda key: [draw(jax.random.fold_in(key, j), s) for j, s in enumerate(shapes)])
        key = jax.random.key(0)
        out[name] = _timed(lambda i: jax.block_until_ready(f(jax.random.fold_in(key, i))), repeats)
    x, w, m = jax.numpy.ones((128, 784)), jax.numpy.ones((784, 256)), jax.numpy.ones((128, 784, 256))
    g = jax.jit(lambda m: jax.numpy.einsum("bi,bio->bo", x, m * w))
    out["masked_product"] = _timed(lambda i: g(m).block_until_ready(), repeats)
    return out


def child_tensorflow(repeats: int) -> dict:
    import tensorflow as tf

    out = {}
    for name, shapes in MASKS.items():
        f = tf.function(lambda seed, shapes=shapes: [tf.random.stateless_uniform(s, seed + j)
                                                      for j, s in enumerate(shapes)])
        out[name] = _timed(lambda i: [t.numpy() for t in f(tf.constant([i, 0]))], repeats)
    x, w, m = tf.ones((128, 784)), tf.ones((784, 256)), tf.ones((128, 784, 256))
    g = tf.function(lambda m: tf.einsum("bi,bio->bo", x, m * w))
    out["masked_product"] = _timed(lambda i: g(m).numpy(), repeats)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--child", choices=["jax", "tensorflow"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.repeats < 1:
        p.exit(2, f"error: --repeats: expected a positive integer. Received: {args.repeats}\n")
    if args.child:
        print(json.dumps((child_jax if args.child == "jax" else child_tensorflow)(args.repeats)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = {}
    for b in ("jax", "tensorflow"):
        out = subprocess.run([sys.executable, __file__, "--child", b, "--repeats", str(args.repeats)],
                             capture_output=True, text=True, env=env, check=True).stdout
        res[b] = json.loads(out.strip().splitlines()[-1])
    os.environ.setdefault("KERAS_BACKEND", "jax")  # the import below pulls in Keras: quietly, on JAX
    from ablation.engine.runner import hardware

    machine = hardware()
    print(f"# {machine['cpu']}, {machine['cores']} cores; median of {args.repeats} "
          f"draws after one untimed; one backend per process")
    print(f"  {'what':26s} {'JAX ms':>9s} {'TF ms':>9s} {'JAX/TF':>7s}")
    for name in [*MASKS, "masked_product"]:
        j, t = res["jax"][name], res["tensorflow"][name]
        print(f"  {name:26s} {j:9.2f} {t:9.2f} {j / t:6.2f}x")


if __name__ == "__main__":
    main()
