"""Training throughput of the runner's path: TensorFlow vs JAX, float32 vs bfloat16, alone vs packed,
held against a hand-written whole-epoch XLA loop, in one run.

Each measurement runs in its own process (a process has one Keras backend), through the runner's own
training path (``ablation.pack.train``: the zoo's model, ``model.fit`` with ``steps_per_execution``,
per-epoch validation), and prints one JSON line that this script gathers:

* the quickstart MLP (MNIST-1D, 40-100-100-10, batch 100, Adam): ms per step in steady state (the
  median epoch from the third on, as under TensorFlow the second epoch still compiles), seconds per
  trial (build to records, all epochs), and the same net packed 8 at a time (8 seeds in one
  compiled step: ms per member-step);
* Srivastava et al.'s 784-2048-2048-2048-10 ReLU net (batch 100, SGD with momentum) on random
  MNIST-shaped data (the cost of a step does not depend on the values): ms per step, the seconds a
  50,000-example MNIST epoch would take at that rate, and the fraction of the machine's matmul
  ceiling it reaches (the step's matmuls alone, same shapes and dtype, on the backend's fastest path);
* the reference: the quickstart MLP trained by one compiled program per epoch (a loop over the
  steps inside ``tf.function(jit_compile=True)`` under TensorFlow, ``jax.lax.fori_loop`` under
  ``jax.jit`` under JAX), batches gathered from arrays already in memory, no validation.

Ratios are printed against the faster backend and against the reference. Timings on a shared
machine are noisy: run it on a quiet machine and read the ratios, not the absolute numbers.

    python benchmarks/bench_training.py [--epochs 8] [--big-epochs 3] [--backends tensorflow jax]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = """
[study]
name = "bench_tiny"
seeds = {seeds}
[data]
name = "mnist1d"
[model]
name = "mnist1d_mlp"
[train]
epochs = {epochs}
batch_size = 100
optimizer = "adam"
learning_rate = 0.01
precision = "{precision}"
[grid]
activation = ["relu"]
"""

BIG = """
[study]
name = "bench_big"
seeds = [0]
[data]
path = "{path}"
validation_size = 1000
[model]
name = "mlp"
hidden = [2048, 2048, 2048]
[train]
epochs = {epochs}
batch_size = 100
optimizer = "momentum"
learning_rate = 0.01
precision = "{precision}"
[grid]
activation = ["relu"]
"""

MNIST_TRAIN = 50_000
PACK = 8


# ----------------------------------------------------------------------------- child measurements

def _runner(text: str) -> dict:
    """One pack through ``ablation.pack.train``: steady-state seconds per step and per trial."""
    from ablation import pack, spec, trial
    from ablation.hypermodel import AblationHyperModel

    s = spec.loads(text)
    hm = AblationHyperModel(s)
    start = time.perf_counter()
    members = [trial.prepare(cfg, f"{i:02d}", hm.dataset(cfg))
               for i, cfg in enumerate(s.resolve(s.points()[0], seed) for seed in s.seeds)]
    ends: list[float] = []
    records = pack.train(s, members, on_epoch=lambda note: ends.append(time.perf_counter()))
    wall = time.perf_counter() - start
    result = records[0].result
    assert all(r.status == "completed" for r in records), [r.result.get("reason") for r in records]
    steps = result["steps_run"] // result["epochs_run"]
    epoch_s = [b - a for a, b in zip(ends, ends[1:])]
    # steady state: the median epoch from the third on (under TensorFlow the second still compiles)
    return {"step_s": statistics.median(epoch_s[1:] or epoch_s) / steps, "trial_s": wall,
            "first_epoch_s": ends[0] - start, "steps_per_epoch": steps, "xla": bool(result.get("xla")),
            "members": len(members), "test_error": result["metrics"]["test_error"],
            "epoch_s": [round(e, 4) for e in epoch_s]}


def _reference(epochs: int) -> dict:
    """The quickstart MLP, one compiled program per epoch, no validation: seconds per step."""
    import keras
    import numpy as np

    from ablation import data, zoo

    ds = data.load("mnist1d")
    keras.utils.set_random_seed(0)
    model = zoo.create("mnist1d_mlp", input_shape=(40,), num_classes=10)
    opt = keras.optimizers.Adam(0.01)
    opt.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    bs = 100
    n = len(ds.x_train) // bs * bs
    xs = ds.x_train[:n].reshape(-1, bs, ds.x_train.shape[1]).astype("float32")
    ys = ds.y_train[:n].reshape(-1, bs)
    rng = np.random.default_rng(0)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def epoch(x, y):
            loss = tf.constant(0.0)
            for i in tf.range(tf.shape(x)[0]):
                with tf.GradientTape() as tape:
                    loss = loss_fn(y[i], model(x[i], training=True))
                opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        def run(order):
            return float(epoch(tf.constant(xs[order]), tf.constant(ys[order])))
    else:
        import jax

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]
        opt_vars = [v.value for v in opt.variables]

        def loss_of(tv, ntv, x, y):
            out, ntv = model.stateless_call(tv, ntv, x, training=True)
            return loss_fn(y, out), ntv

        @jax.jit
        def epoch(state, x, y):
            def body(i, carry):
                tv, ntv, ov, _ = carry
                (loss, ntv), grads = jax.value_and_grad(loss_of, has_aux=True)(tv, ntv, x[i], y[i])
                tv, ov = opt.stateless_apply(ov, grads, tv)
                return tv, ntv, ov, loss
            return jax.lax.fori_loop(0, x.shape[0], body, (*state, 0.0))

        state = [trainable, frozen, opt_vars]

        def run(order):
            nonlocal state
            *state, loss = epoch(state, xs[order], ys[order])
            return float(loss)

    run(rng.permutation(len(xs)))  # trace and compile
    start = time.perf_counter()
    for _ in range(epochs):
        run(rng.permutation(len(xs)))
    return {"step_s": (time.perf_counter() - start) / (epochs * len(xs))}


def _ceiling(precision: str, batch: int = 100, dims: tuple[int, ...] = (784, 2048, 2048, 2048, 10),
             reps: int = 30) -> dict:
    """The matmul ceiling of one training step of the big net: the three matmuls per layer of a step
    (forward, input gradient, weight gradient) at the same shapes and dtype, nothing else; the fastest
    path this backend has (TensorFlow: with and without XLA, as its oneDNN kernels may use AMX)."""
    import keras
    import numpy as np

    dtype = "bfloat16" if precision == "mixed_bfloat16" else "float32"
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.normal(size=(batch, dims[0])), dtype)
    ws = [keras.ops.convert_to_tensor(rng.normal(size=(a, b)) / np.sqrt(a), dtype) for a, b in zip(dims, dims[1:])]
    gs = [keras.ops.convert_to_tensor(rng.normal(size=(batch, b)), dtype) for b in dims[1:]]

    def step(x, ws, gs):
        outs, acts = [], [x]
        for w in ws:
            acts.append(keras.ops.matmul(acts[-1], w))
        for a, w, g in zip(acts, ws, gs):
            outs += [keras.ops.matmul(g, keras.ops.transpose(w)), keras.ops.matmul(keras.ops.transpose(a), g)]
        return sum(keras.ops.sum(o[:1, :1]) for o in outs) + keras.ops.sum(acts[-1][:1, :1])

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        fns = {"xla": tf.function(step, jit_compile=True), "no xla": tf.function(step)}
    else:
        import jax

        fns = {"xla": jax.jit(step)}
    best = {}
    for name, fn in fns.items():
        float(fn(x, ws, gs))
        start = time.perf_counter()
        for _ in range(reps):
            out = fn(x, ws, gs)
        float(out)
        best[name] = (time.perf_counter() - start) / reps
    path = min(best, key=best.get)
    flops = 6 * batch * sum(a * b for a, b in zip(dims, dims[1:]))
    return {"ceiling_s": best[path], "ceiling_path": path, "ceiling_gflops": flops / best[path] / 1e9}


def child(args: argparse.Namespace) -> None:
    os.environ["KERAS_BACKEND"] = args.backend
    from ablation import backend

    backend.start()
    if args.what == "reference":
        out = _reference(args.epochs)
    elif args.what == "big":
        out = _runner(BIG.format(path=args.data, epochs=args.epochs, precision=args.precision))
        out.update(_ceiling(args.precision))
    else:
        seeds = list(range(PACK if args.what == "pack" else 1))
        out = _runner(TINY.format(seeds=seeds, epochs=args.epochs, precision=args.precision))
    print(json.dumps(out))


# ----------------------------------------------------------------------------- the run

def _measure(backend: str, what: str, precision: str, epochs: int, data: str) -> dict | None:
    cmd = [sys.executable, __file__, "--child", what, "--backend", backend, "--precision", precision,
           "--epochs", str(epochs), "--data", data]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"  {backend} {what} {precision}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fake_mnist(folder: Path) -> str:
    """10,000 + 2,000 random 784-feature examples with a learnable labelling, as an .npz file."""
    import numpy as np

    rng = np.random.default_rng(0)
    w = rng.normal(size=(784, 10))
    x = rng.random((12_000, 784), dtype=np.float32)
    y = np.argmax((x - 0.5) @ w, axis=1).astype("int64")
    path = folder / "fake_mnist.npz"
    np.savez(path, x_train=x[:10_000], y_train=y[:10_000], x_test=x[10_000:], y_test=y[10_000:])
    return str(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8, help="epochs of the quickstart MLP (the first two not timed)")
    p.add_argument("--big-epochs", type=int, default=3, help="epochs of the 784-2048x3-10 net (10,000 examples)")
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    p.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    p.add_argument("--child", choices=["tiny", "pack", "big", "reference"], help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--data", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.what = args.child
        return child(args)

    import platform

    import psutil

    print(f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores; Python "
          f"{platform.python_version()}; one process per measurement, run one after another")
    results: dict[tuple, dict | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fake = _fake_mnist(Path(tmp))
        for b in args.backends:
            results[(b, "reference", "float32")] = _measure(b, "reference", "float32", args.epochs, fake)
            for prec in args.precisions:
                for what, epochs in (("tiny", args.epochs), ("pack", args.epochs), ("big", args.big_epochs + 2)):
                    results[(b, what, prec)] = _measure(b, what, prec, epochs, fake)
    ms = lambda r: f"{r['step_s'] * 1e3:8.3f}" if r else "  failed"  # noqa: E731
    ref = min((r["step_s"] for k, r in results.items() if k[1] == "reference" and r), default=None)

    print(f"\nquickstart MLP (MNIST-1D, batch 100, Adam), {args.epochs} epochs; ms per step (median epoch from the third on)")
    print(f"  {'backend':11s} {'precision':15s} {'alone':>8s} {'xla':>4s} {'s/trial':>8s} "
          f"{'pack of ' + str(PACK):>10s} {'pack gain':>9s} {'alone/ref':>9s}")
    for (b, what, prec), r in results.items():
        if what != "tiny":
            continue
        packed = results.get((b, "pack", prec))
        per_member = packed["step_s"] / PACK if packed else None
        print(f"  {b:11s} {prec:15s} {ms(r)} {('yes' if r and r['xla'] else 'no'):>4s} "
              f"{(r['trial_s'] if r else float('nan')):8.2f} "
              f"{(per_member * 1e3 if per_member else float('nan')):10.3f} "
              f"{(r['step_s'] / per_member if r and per_member else float('nan')):8.2f}x "
              f"{(r['step_s'] / ref if r and ref else float('nan')):8.2f}x")
    for (b, what, _), r in results.items():
        if what == "reference":
            print(f"  {b:11s} whole-epoch XLA loop (reference, no validation) {ms(r)} ms/step")

    print(f"\n784-2048-2048-2048-10 ReLU (batch 100, momentum), median of {args.big_epochs} epochs of 10,000 examples")
    print(f"  {'backend':11s} {'precision':15s} {'ms/step':>8s} {'xla':>4s} {'MNIST epoch':>11s} "
          f"{'matmul ceiling':>22s} {'fraction':>8s}")
    for (b, what, prec), r in results.items():
        if what == "big":
            epoch = r["step_s"] * MNIST_TRAIN / 100 if r else float("nan")
            ceiling = (f"{r['ceiling_s'] * 1e3:6.2f} ms ({r['ceiling_path']}, {r['ceiling_gflops']:.0f} GFLOP/s)"
                       if r else "")
            print(f"  {b:11s} {prec:15s} {ms(r)} {('yes' if r and r['xla'] else 'no'):>4s} {epoch:10.1f}s "
                  f"{ceiling:>22s} {(r['ceiling_s'] / r['step_s'] if r else float('nan')):7.0%}")

    if len(args.backends) == 2:
        a, b = args.backends
        print(f"\nratios {a} / {b} (above 1: {b} is faster)")
        for what in ("tiny", "pack", "big"):
            for prec in args.precisions:
                ra, rb = results.get((a, what, prec)), results.get((b, what, prec))
                if ra and rb:
                    extra = f"; per trial {ra['trial_s'] / rb['trial_s']:.2f}x" if what == "tiny" else ""
                    print(f"  {what:5s} {prec:15s} per step {ra['step_s'] / rb['step_s']:.2f}x{extra}")


if __name__ == "__main__":
    main()
