"""Users' models through the runner against plain ``model.fit``, per backend, in one run.

For each model the runner's own training path (``ablation.trials.trial.prepare`` then ``ablation.trials.pack.train``,
as a worker runs a trial: the zoo's or the user's model, the recipe's optimizer, per-epoch validation
and bookkeeping) is timed against plain ``model.fit`` on the same backend, data, batch size, epochs and
validation set (the model built the same way, compiled with the same optimizer, loss and metrics,
Keras' default ``jit_compile``), and, where the runner scans chunks, against a hand-written
whole-epoch loop (one compiled program per epoch, batches already in memory, no validation: the limit
for one model). The runner is timed on the path its rule picks (``training.choose_path``) and on the
other paths it could take (``scan`` / ``keras``, and under TensorFlow XLA off), so the rule can be
checked against the numbers. ms per step is the median epoch from the second on (the first compiles),
divided by the epoch's steps.

Models: the quickstart MLP (MNIST-1D, 40-100-100-10), 784-1024x3-10 with dropout 0.5, the zoo's CNN
with max pooling, the keras.io "Simple MNIST convnet" given as a user's model function, a 12-layer
residual MLP with batch normalization, DropConnect 2x256. MNIST comes from ``ABLATION_MNIST_DIR``
when set (else random MNIST-shaped data: a step's cost does not depend on the values); 2,048 training
images and 512 validation images, batch 128 (16 steps an epoch).

Each backend runs in its own process (``KERAS_BACKEND`` is read when Keras is imported). The machine
may be shared: the ratios within one run are what count, not the absolute numbers.

    python benchmarks/bench_models.py [--backend jax|tensorflow|both] [--epochs 4] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whole_epoch import epoch_runner  # noqa: E402  (the hand-written reference loop, shared)

CONVNET = '''
import keras
from keras import layers


def convnet(input_shape, num_classes):
    """The keras.io "Simple MNIST convnet" (fchollet), as a user writes it."""
    return keras.Sequential([
        keras.Input(shape=input_shape), layers.Reshape((28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"), layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"), layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(num_classes, activation="softmax"),
    ])
'''

MNIST_DATA = """
[data]
{source}
validation_size = 512
train_size = 2048
"""

TRAIN = """
[train]
epochs = {epochs}
batch_size = {batch}
optimizer = "{optimizer}"
{momentum}
[grid]
learning_rate = [{lr}]
"""

# name -> (the [data] section ("mnist" / "mnist1d"), the [model] section, optimizer, learning rate, batch)
MODELS: dict[str, tuple[str, str, str, float, int]] = {
    "quickstart_mlp": ("mnist1d", 'name = "mnist1d_mlp"\nactivation = "relu"\ndropout = 0.0', "adam", 0.01, 100),
    "mlp_3x1024_dropout": ("mnist", 'name = "mlp"\nhidden = [1024, 1024, 1024]\ndropout = 0.5', "momentum", 0.01,
                           128),
    "zoo_cnn_maxpool": ("mnist", 'name = "cnn"\npooling = "max"', "momentum", 0.01, 128),
    "kerasio_convnet": ("mnist", 'factory = "convnet.py:convnet"', "adam", 0.001, 128),
    "resmlp_12x128_bn": ("mnist", 'name = "mlp"\nhidden = [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, '
                                  '128]\nresidual = true\nbatchnorm = true', "momentum", 0.01, 128),
    "dropconnect_2x256": ("mnist", 'name = "mlp"\nhidden = [256, 256]\ndropout = 0.0\ndropconnect = 0.5',
                          "momentum", 0.01, 128),
}


def study_text(name: str, epochs: int, mnist_source: str) -> str:
    data, model, optimizer, lr, batch = MODELS[name]
    head = f'[study]\nname = "bench_{name}"\nseeds = [0]\n'
    if data == "mnist1d":
        data_text = '\n[data]\nname = "mnist1d"\n'
    else:
        data_text = MNIST_DATA.format(source=mnist_source)
    train = TRAIN.format(epochs=epochs, batch=batch, optimizer=optimizer, lr=lr,
                         momentum="momentum = 0.9" if optimizer == "momentum" else "")
    return head + data_text + f"\n[model]\n{model}\n" + train


# ----------------------------------------------------------------------------- child: one backend

SKIP = 1  # untimed first epochs (--skip): they compile (under TensorFlow the second may still)


def _per_step(ends: list[float], steps: int) -> float:
    """Median seconds per step of the epochs after the first SKIP (``ends``: each epoch's end)."""
    epochs = [b - a for a, b in zip(ends, ends[1:])][SKIP - 1:]
    return statistics.median(epochs) / steps


def _runner(s, cfg, ds, path: str | None) -> dict:
    """One trial through the runner's path (trial.prepare + pack.train), as a worker runs it."""
    from ablation.trials import pack, trial

    start = time.perf_counter()
    member = trial.prepare(cfg, "00", ds)
    ends = [start]
    (record,) = pack.train(s, [member], on_epoch=lambda note: ends.append(time.perf_counter()), path=path)
    r = record.result
    if r["status"] != "completed":
        raise RuntimeError(f"runner: {r.get('reason')}\n{r.get('traceback', '')[-2000:]}")
    steps = r["steps_run"] // r["epochs_run"]
    return {"step_s": _per_step(ends[1:], steps), "first_epoch_s": ends[1] - start, "steps": steps,
            "path": r["train_path"], "xla": r["xla"], "reason": r["train_path_reason"],
            "val_error": r["metrics"].get("val_error")}


def _fit(cfg, ds, jit_compile) -> dict:
    """Plain ``model.fit`` on the same model, optimizer, data, batch size, epochs and validation set."""
    import keras

    from ablation.data import tasks
    from ablation.train import training
    from ablation.trials import trial
    from ablation import zoo

    start = time.perf_counter()
    model = trial.build_model(cfg, ds)
    loss, metrics = tasks.compiled(cfg.task, zoo.outputs_probabilities(model))
    model.compile(optimizer=training.make_optimizer(cfg.train), loss=loss, metrics=metrics, jit_compile=jit_compile)
    ends = [start]

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.perf_counter())

    val = (ds.x_val, ds.y_val) if ds.x_val is not None and len(ds.x_val) else None
    model.fit(ds.x_train, ds.y_train, batch_size=cfg.train.batch_size, epochs=cfg.train.epochs,
              validation_data=val, verbose=0, callbacks=[Clock()])
    steps = -(-len(ds.x_train) // cfg.train.batch_size)
    return {"step_s": _per_step(ends[1:], steps), "first_epoch_s": ends[1] - start,
            "jit_compile": str(model.jit_compile)}


def _loop(cfg, ds) -> dict:
    """A hand-written whole-epoch loop: one compiled program per epoch over batches already in memory
    (``jax.lax.fori_loop`` in ``jax.jit`` / a ``tf.range`` loop in ``tf.function(jit_compile=True)``), no
    validation, no metrics: the limit for one model."""
    import numpy as np

    from ablation.data import tasks
    from ablation.train import training
    from ablation.trials import trial
    from ablation import zoo

    model = trial.build_model(cfg, ds)
    loss_fn, _ = tasks.compiled(cfg.task, zoo.outputs_probabilities(model))
    opt = training.make_optimizer(cfg.train)
    opt.build(model.trainable_variables)
    bs = cfg.train.batch_size
    n = len(ds.x_train) // bs * bs
    xs = np.asarray(ds.x_train[:n], "float32").reshape(-1, bs, *ds.x_train.shape[1:])
    ys = np.asarray(ds.y_train[:n]).reshape(-1, bs)
    rng = np.random.default_rng(0)
    run = epoch_runner(model, opt, loss_fn, xs, ys)
    run(rng.permutation(len(xs)))  # trace and compile
    times = []
    for _ in range(max(1, cfg.train.epochs - SKIP)):
        t = time.perf_counter()
        run(rng.permutation(len(xs)))
        times.append(time.perf_counter() - t)
    return {"step_s": statistics.median(times) / len(xs)}


def child(models: list[str], epochs: int, out: Path) -> None:
    from ablation.base import backend

    backend.start()
    import keras

    from ablation import spec as spec_module
    from ablation.engine.hypermodel import AblationHyperModel

    name = keras.backend.backend()
    mnist_dir = os.environ.get("ABLATION_MNIST_DIR")
    if mnist_dir and Path(mnist_dir).is_dir():
        source = 'name = "mnist"'
    else:  # random MNIST-shaped data (a step's cost does not depend on the values)
        import numpy as np

        rng = np.random.default_rng(0)
        npz = out / "mnist_like.npz"
        np.savez(npz, x_train=rng.random((2560, 784), dtype=np.float32), y_train=rng.integers(0, 10, 2560),
                 x_test=rng.random((512, 784), dtype=np.float32), y_test=rng.integers(0, 10, 512))
        source = f'path = "{npz}"'
    (out / "convnet.py").write_text(CONVNET)
    for model in models:
        study = out / f"{model}.toml"
        study.write_text(study_text(model, epochs, source))
        s = spec_module.load(study)
        cfg = s.resolve(s.points()[0], s.seeds[0])
        ds = AblationHyperModel(s).dataset(cfg)
        row = {"model": model, "backend": name, "data": "mnist" if mnist_dir else "synthetic",
               "train": len(ds.x_train), "batch": cfg.train.batch_size}
        row["runner"] = _runner(s, cfg, ds, None)
        row["fit"] = _fit(cfg, ds, "auto")
        alt = "keras" if row["runner"]["path"] == "scan" else "scan"
        if row["runner"]["reason"].startswith("convolutions"):  # 5x slower on a CPU: benchmarks/bench_conv_scan.py
            row["runner_" + alt] = {"skipped": "scanned convolutions: see benchmarks/bench_conv_scan.py"}
        elif not row["runner"]["xla"]:
            row["runner_" + alt] = {"skipped": "no XLA: a scanned chunk is one XLA program"}
        else:
            row["runner_" + alt] = _runner(s, cfg, ds, alt)
        if name == "tensorflow":
            no_xla = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, jit_compile=False))
            if row["runner"]["xla"]:
                row["runner_no_xla"] = _runner(s, no_xla, ds, None)
            row["fit_no_xla"] = _fit(cfg, ds, False)
        if row["runner"]["path"] == "scan":
            row["loop"] = _loop(cfg, ds)
        print(json.dumps(row), flush=True)


# ----------------------------------------------------------------------------- parent: the table

def _ms(r: dict | None) -> str:
    return f"{r['step_s'] * 1e3:8.2f}" if r and "step_s" in r else f"{'-':>8s}"


def table(rows: list[dict]) -> list[str]:
    lines = [f"  {'model':20s} {'backend':10s} {'rule path':12s} {'runner':>8s} {'fit':>8s} {'run/fit':>7s} "
             f"{'other paths (ms/step, ratio to fit)':44s} {'loop':>8s} {'run/loop':>8s}"]
    for r in rows:
        run, fit = r["runner"], r["fit"]
        path = f"{run['path']}{'' if run['xla'] else ' no-xla'}"
        others = []
        for key, label in (("runner_scan", "scan"), ("runner_keras", "keras"), ("runner_no_xla", "no-xla"),
                           ("fit_no_xla", "fit no-xla")):
            o = r.get(key)
            if o and "step_s" in o:
                others.append(f"{label} {o['step_s'] * 1e3:.2f} ({o['step_s'] / fit['step_s']:.2f}x)")
        loop = r.get("loop")
        lines.append(f"  {r['model']:20s} {r['backend']:10s} {path:12s} {_ms(run)} {_ms(fit)} "
                     f"{run['step_s'] / fit['step_s']:6.2f}x {'; '.join(others):44s} {_ms(loop)} "
                     + (f"{run['step_s'] / loop['step_s']:7.2f}x" if loop else f"{'-':>8s}"))
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["jax", "tensorflow", "both"], default="both")
    p.add_argument("--epochs", type=int, default=4, help="epochs per measurement (the first is not timed)")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--skip", type=int, default=1, help="first epochs not timed (they compile; default 1)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.skip < 1 or args.epochs < args.skip + 2:
        p.exit(2, f"error: --epochs, --skip: expected skip >= 1 and epochs >= skip + 2. Received: {args.epochs}, "
                  f"{args.skip}\n")
    global SKIP
    SKIP = args.skip
    if args.child:
        child(args.models, args.epochs, Path(args.child))
        return
    import psutil

    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    print(f"# {cpu}, {psutil.cpu_count()} cores; Python {platform.python_version()}; {args.epochs} epochs per "
          f"measurement, ms/step = median epoch after the first {args.skip} / steps; one backend per process")
    print("# the machine may be shared with other work: compare ratios within this run, not absolute times")
    rows: list[dict] = []
    backends = ["jax", "tensorflow"] if args.backend == "both" else [args.backend]
    for b in backends:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "KERAS_BACKEND": b, "TF_CPP_MIN_LOG_LEVEL": "2",
                   "JAX_COMPILATION_CACHE_DIR": str(Path(tmp) / "jax-cache")}
            cmd = [sys.executable, __file__, "--child", tmp, "--epochs", str(args.epochs), "--skip", str(args.skip),
                   "--models", *args.models]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
            for line in proc.stdout:
                if line.startswith("{"):
                    row = json.loads(line)
                    rows.append(row)
                    print(table([row])[1], flush=True)
            if proc.wait() != 0:
                raise SystemExit(f"the {b} process failed (exit {proc.returncode})")
    print("\n" + "\n".join(table(rows)))
    print("\n# why each rule path (training.choose_path):")
    for r in rows:
        print(f"#   {r['model']} ({r['backend']}): {r['runner']['reason']}")
    print("# raw: " + json.dumps(rows))


if __name__ == "__main__":
    main()
