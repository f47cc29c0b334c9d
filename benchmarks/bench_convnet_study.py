"""A user's convnet study end to end against the same trainings as plain ``model.fit`` calls, in one run.

Issue 20's criterion: the keras.io "Simple MNIST convnet" given as a user's model function, 20 trials of 3
epochs (training sets of 500 and 2,000 MNIST images x 10 seeds, batch 128, Adam 0.001, no validation split),
through ``ablation run`` finishes in less time than the 20 trainings as plain ``fit`` calls would take, plus
10%. Each side is timed end to end as a user meets it, in a fresh process with an empty compilation cache
(a fresh ``XDG_CACHE_HOME``):

- **the study**: ``ablation run study.toml --out TMP --no-report --quiet`` with every default (the backend
  the runner's rule picks, one local worker, packs);
- **the reference**: a plain script that imports Keras on one backend, loads the same arrays, and for each
  of the 20 trials builds the model, compiles it (Adam 0.001, sparse categorical cross-entropy, accuracy),
  fits 3 epochs at batch 128 and evaluates it on the test set (the runner records each trial's test error
  too), once per backend; the criterion takes the faster backend.

MNIST comes from ``ABLATION_MNIST_DIR`` when set (written to one ``.npz`` both sides read), else random
MNIST-shaped arrays of the same sizes (a step's cost does not depend on the values). Each side runs
``--repeats`` times, alternating; the medians are compared. The machine may be shared: read the ratio.

    python benchmarks/bench_convnet_study.py [--repeats 1] [--backends tensorflow jax]
"""

from __future__ import annotations

import argparse
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
from bench_models import CONVNET  # noqa: E402  (the keras.io convnet as a user writes it, shared)

SIZES = (500, 2000)
SEEDS = 10
EPOCHS, BATCH, LR = 3, 128, 0.001
TRAIN_POOL, TEST = 2000, 10000

STUDY = f"""
[study]
name = "bench_convnet_study"
seeds = {list(range(SEEDS))}
[data]
path = "{{npz}}"
[model]
factory = "convnet.py:convnet"
[train]
epochs = {EPOCHS}
batch_size = {BATCH}
optimizer = "adam"
learning_rate = {LR}
[grid]
train_size = {list(SIZES)}
"""

REFERENCE = f"""
import sys, time
start = time.perf_counter()
import numpy as np
import keras
sys.path.insert(0, sys.argv[2])
from convnet import convnet

d = np.load(sys.argv[1])
for size in {list(SIZES)}:
    for seed in range({SEEDS}):
        keras.utils.set_random_seed(seed)
        model = convnet((784,), 10)
        model.compile(optimizer=keras.optimizers.Adam({LR}), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(d["x_train"][:size], d["y_train"][:size], batch_size={BATCH}, epochs={EPOCHS}, verbose=0)
        model.evaluate(d["x_test"], d["y_test"], batch_size=1024, verbose=0)
        keras.backend.clear_session()
print(time.perf_counter() - start)
"""


def write_data(folder: Path) -> tuple[Path, str]:
    """The arrays both sides train on: real MNIST (the first 2,000 training images, the 10,000 test images)
    when ``ABLATION_MNIST_DIR`` is set, else random arrays of the same shapes."""
    import numpy as np

    npz = folder / "mnist.npz"
    mnist_dir = os.environ.get("ABLATION_MNIST_DIR")
    if mnist_dir and Path(mnist_dir).is_dir():
        from ablation import data

        ds = data.load("mnist")
        x_train, y_train, x_test, y_test = ds.x_train[:TRAIN_POOL], ds.y_train[:TRAIN_POOL], ds.x_test, ds.y_test
        what = "MNIST"
    else:
        rng = np.random.default_rng(0)
        x_train, y_train = rng.random((TRAIN_POOL, 784), dtype=np.float32), rng.integers(0, 10, TRAIN_POOL)
        x_test, y_test = rng.random((TEST, 784), dtype=np.float32), rng.integers(0, 10, TEST)
        what = "random MNIST-shaped arrays"
    np.savez(npz, x_train=np.asarray(x_train, "float32").reshape(len(x_train), -1), y_train=y_train,
             x_test=np.asarray(x_test, "float32").reshape(len(x_test), -1), y_test=y_test)
    return npz, what


def _env(cache: str, backend: str | None = None) -> dict[str, str]:
    env = {**os.environ, "XDG_CACHE_HOME": cache, "PYTHONUNBUFFERED": "1"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop("KERAS_BACKEND", None)
    if backend:
        env["KERAS_BACKEND"] = backend
    return env


def time_study(folder: Path, study: Path) -> tuple[float, str]:
    """Wall seconds of ``ablation run`` on the study (fresh caches), and the backend its run.json says it chose;
    prints run.json's phases."""
    with tempfile.TemporaryDirectory(dir=folder) as cache, tempfile.TemporaryDirectory(dir=folder) as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ablation", "run", str(study), "--out", out, "--no-report", "--quiet"],
                       env=_env(cache), check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        (run_dir,) = Path(out).iterdir()
        meta = json.loads((run_dir / "run.json").read_text())
        phases = meta["invocations"][-1].get("phases", {})
        print("  run.json phases: " + ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in phases.items()
                                                if isinstance(v, (int, float))), flush=True)
        return wall, meta["backend_choice"]["backend"]


def time_reference(folder: Path, npz: Path, backend: str) -> float:
    """Wall seconds of the plain script on ``backend`` (fresh caches), process start to its end."""
    script = folder / "reference.py"
    script.write_text(REFERENCE)
    with tempfile.TemporaryDirectory(dir=folder) as cache:
        start = time.perf_counter()
        subprocess.run([sys.executable, str(script), str(npz), str(folder)], env=_env(cache, backend), check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax"], choices=["tensorflow", "jax"])
    args = p.parse_args()
    if args.repeats < 1:
        p.exit(2, f"error: --repeats: expected an integer >= 1. Received: {args.repeats}\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        npz, what = write_data(folder)
        (folder / "convnet.py").write_text(CONVNET)
        study = folder / "study.toml"
        study.write_text(STUDY.format(npz=npz))
        print(f"# keras.io convnet study: {len(SIZES) * SEEDS} trials x {EPOCHS} epochs (train sizes {SIZES}, "
              f"batch {BATCH}), {what}; {platform.machine()}, {os.cpu_count()} cores; median of {args.repeats}; "
              f"the machine may be shared: compare within this run", flush=True)
        study_s, refs, chosen = [], {b: [] for b in args.backends}, "?"
        for _ in range(args.repeats):
            wall, chosen = time_study(folder, study)
            study_s.append(wall)
            for b in args.backends:
                refs[b].append(time_reference(folder, npz, b))
        run = statistics.median(study_s)
        print(f"  ablation run (backend {chosen}, by the rule)    {run:8.2f} s")
        for b, times in refs.items():
            print(f"  20 plain fit + evaluate calls, {b:10s}    {statistics.median(times):8.2f} s   "
                  f"run / fit: {run / statistics.median(times):.2f}x")
        best = min(statistics.median(t) for t in refs.values())
        verdict = "met" if run <= 1.1 * best else "not met"
        print(f"  run / the faster backend's fits: {run / best:.2f}x (target <= 1.10x: {verdict})")


if __name__ == "__main__":
    main()
