"""Training throughput of the runner's path: TensorFlow vs JAX, float32 vs bfloat16, alone vs packed,
held against a hand-written whole-epoch XLA loop, in one run.

Each measurement runs in its own process (a process has one Keras backend), through the runner's own
training path (``ablation.trials.pack.train``: the zoo's model, ``model.fit``, per-epoch bookkeeping), and
prints one JSON line that this script gathers; each is run ``--repeats`` times, alternating, and the
fastest run is kept (the least disturbed on a shared machine):

* the quickstart MLP (MNIST-1D, 40-100-100-10, batch 100, Adam): ms per step in steady state (the
  median epoch from the third on, as under TensorFlow the second epoch still compiles), seconds per
  trial (build to records, all epochs), and the same net packed 8 at a time (8 seeds in one
  compiled step: ms per member-step), with the bound no pack can beat: 8 members' arithmetic at the
  backend's matmul ceiling;
* Srivastava et al.'s 784-2048-2048-2048-10 ReLU net (batch 100, SGD with momentum) on random
  MNIST-shaped data (the cost of a step does not depend on the values): ms per step on the path
  the runner chooses (``training.use_xla``) and, for TensorFlow in bfloat16, with XLA forced; the
  seconds a 50,000-example MNIST epoch would take at that rate, and the fraction of the machine's
  matmul ceiling it reaches (the step's matmuls alone, same shapes and dtype, on the backend's
  fastest path);
* the reference: the quickstart MLP trained by one compiled program per epoch (a loop over the
  steps inside ``tf.function(jit_compile=True)`` under TensorFlow, ``jax.lax.fori_loop`` under
  ``jax.jit`` under JAX), batches gathered from arrays already in memory, no validation.

Ratios are printed against the reference, the targets of issue 9 beside them. Read the ratios,
not the absolute numbers.

    python benchmarks/bench_training.py [--epochs 8] [--big-epochs 3] [--repeats 2] [--backends tensorflow jax]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whole_epoch import epoch_runner  # noqa: E402  (the hand-written reference loop, shared)

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
    """One pack through ``ablation.trials.pack.train``: steady-state seconds per step and per trial."""
    from ablation.trials import pack, trial
    from ablation import spec
    from ablation.engine.hypermodel import AblationHyperModel

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
            "params": int(members[0].model.count_params()), "batch_size": 100,
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
    run = epoch_runner(model, opt, loss_fn, xs, ys)
    run(rng.permutation(len(xs)))  # trace and compile
    start = time.perf_counter()
    for _ in range(epochs):
        run(rng.permutation(len(xs)))
    return {"step_s": (time.perf_counter() - start) / (epochs * len(xs))}


def _ceiling(precision: str, batch: int = 100, dims: tuple[int, ...] = (784, 2048, 2048, 2048, 10),
             reps: int = 30) -> dict:
    """The matmul ceiling of one training step of the big net: the three matmuls per layer of a step
    (forward, input gradient, weight gradient) at the same shapes and dtype, nothing else; the fastest
    path this backend has (TensorFlow: with and without XLA, as its oneDNN kernels use the CPU's bf16 instructions)."""
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
            # the gradients' matmuls contract over transposed operands without materializing a transpose
            outs += [keras.ops.einsum("bo,io->bi", g, w), keras.ops.einsum("bi,bo->io", a, g)]
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
    from ablation.base import backend

    backend.start()
    if args.what == "reference":
        out = _reference(args.epochs)
    elif args.what in ("big", "big-xla"):
        if args.what == "big-xla":  # XLA whatever training.use_xla would choose
            from ablation.train import training

            training.use_xla = lambda models, train: True
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
    with tempfile.TemporaryDirectory() as cache:  # JAX compiles cold, as in a first run (no programs on disk)
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_COMPILATION_CACHE_DIR": cache}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"  {backend} {what} {precision}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _keep(results: dict, key: tuple, r: dict | None) -> None:
    """Keep the faster of two runs of one measurement (a failed run keeps nothing)."""
    if r is not None and (results.get(key) is None or r["step_s"] < results[key]["step_s"]):
        results[key] = r
    else:
        results.setdefault(key, None)


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
    p.add_argument("--repeats", type=int, default=2, choices=range(1, 11), metavar="{1..10}",
                   help="runs of each measurement, alternating; the fastest is kept")
    p.add_argument("--child", choices=["tiny", "pack", "big", "big-xla", "reference"], help=argparse.SUPPRESS)
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
        for _ in range(args.repeats):  # alternate, keep each measurement's fastest run (the least disturbed)
            for b in args.backends:
                _keep(results, (b, "reference", "float32"), _measure(b, "reference", "float32", args.epochs, fake))
                for prec in args.precisions:
                    for what, epochs in (("tiny", args.epochs), ("pack", args.epochs), ("big", args.big_epochs + 2)):
                        _keep(results, (b, what, prec), _measure(b, what, prec, epochs, fake))
                    if b == "tensorflow" and prec == "mixed_bfloat16":  # the path training.use_xla declines
                        _keep(results, (b, "big-xla", prec), _measure(b, "big-xla", prec, args.big_epochs + 2, fake))
    _print(results, args)


def _print(results: dict, args: argparse.Namespace) -> None:
    ms = lambda r: f"{r['step_s'] * 1e3:8.3f}" if r else "  failed"  # noqa: E731
    nan = float("nan")
    machine = {}  # per precision: the fastest matmuls measured on any backend and path (the machine's ceiling)
    for (b, what, prec), r in results.items():
        if what in ("big", "big-xla") and r and r["ceiling_s"] < machine.get(prec, (float("inf"),))[0]:
            machine[prec] = (r["ceiling_s"], f"{b}, {r['ceiling_path']}", r["ceiling_gflops"])

    print(f"\nquickstart MLP (MNIST-1D, batch 100, Adam), {args.epochs} epochs; ms per step (median epoch from "
          f"the third on; fastest of {args.repeats} runs)")
    print(f"  {'backend':11s} {'precision':15s} {'alone':>8s} {'s/trial':>8s} {'member of ' + str(PACK):>12s} "
          f"{'pack gain':>9s} {'alone/loop':>10s} {'member/loop':>11s}")
    for (b, what, prec), r in results.items():
        if what != "tiny":
            continue
        ref, packed = results.get((b, "reference", "float32")), results.get((b, "pack", prec))
        member = packed["step_s"] / PACK if packed else None
        print(f"  {b:11s} {prec:15s} {ms(r)} {(r['trial_s'] if r else nan):8.2f} "
              f"{(member * 1e3 if member else nan):12.3f} {(r['step_s'] / member if r and member else nan):8.2f}x "
              f"{(r['step_s'] / ref['step_s'] if r and ref else nan):9.2f}x "
              f"{(member / ref['step_s'] if member and ref else nan):10.2f}x")
    for (b, what, _), r in results.items():
        if what == "reference":
            print(f"  {b:11s} loop: whole epoch in one compiled program (no validation) {ms(r)} ms/step")
    print("  targets: a member of a pack / the loop <= 1.5x; one step of 8 packed / one alone <= 2.5x")
    for (b, what, prec), r in results.items():
        packed = results.get((b, "pack", prec))
        if what != "tiny" or not (r and packed):
            continue
        line = f"  {b:11s} {prec:15s} step of {PACK} packed / one alone: {packed['step_s'] / r['step_s']:.2f}x"
        if prec in machine:  # 8 members' arithmetic at the machine's matmul ceiling: a bound no pack can beat
            gflops = machine[prec][2]
            floor = PACK * 6 * r["params"] * r["batch_size"] / (gflops * 1e9)
            line += (f"; {PACK} members' arithmetic at the matmul ceiling ({gflops:.0f} GFLOP/s) "
                     f"alone takes {floor * 1e3:.3f} ms = {floor / r['step_s']:.2f}x one step")
        print(line)

    print(f"\n784-2048-2048-2048-10 ReLU (batch 100, momentum), median of {args.big_epochs} epochs of 10,000 examples")
    print(f"  {'backend':11s} {'precision':15s} {'path':13s} {'ms/step':>8s} {'MNIST epoch':>11s} "
          f"{'its own matmuls alone':>30s} {'fraction':>8s}")
    for (b, what, prec), r in results.items():
        if what in ("big", "big-xla"):
            path = ("XLA" if r and r["xla"] else "no XLA") + (" (forced)" if what == "big-xla" else "")
            epoch = r["step_s"] * MNIST_TRAIN / 100 if r else nan
            own = f"{r['ceiling_s'] * 1e3:6.2f} ms ({r['ceiling_path']}, {r['ceiling_gflops']:.0f} GFLOP/s)" if r else ""
            print(f"  {b:11s} {prec:15s} {path:13s} {ms(r)} {epoch:10.1f}s {own:>30s} "
                  f"{(machine[prec][0] / r['step_s'] if r else nan):7.0%}")
    for prec, (ceiling_s, where, gflops) in machine.items():
        print(f"  machine ceiling, {prec}: {ceiling_s * 1e3:.2f} ms a step ({where}, {gflops:.0f} GFLOP/s)")
    print("  fraction: the machine's ceiling / the step; targets: float32 >= 75%, mixed_bfloat16 >= 50%")

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
