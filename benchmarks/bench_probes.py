"""How much do the probes slow training down? Epoch time with every probe on vs none.

The quickstart-sized setup: MNIST-1D (4000 training examples, 40 features, 10 classes), the
zoo MLP 40-100-100-100-10 (ReLU, dropout 0.5), SGD, batch 100 (40 steps per epoch), 500
validation examples, the runner's training path (``training.compile_model`` / ``training.fit``:
cached tf.data, XLA, steps_per_execution). Probe batch: 512 training examples.

An epoch's time is the wall time between consecutive ``on_epoch_end`` calls of a callback placed
after the probes (so it includes their epoch-end measurements, batch-hook samples and
validation); the first two epochs (tracing, XLA compilation) are dropped and the median is
taken. Runs with and without probes alternate, each on a fresh model with the same seed.

Wall time on a shared machine moves with other processes' load; process CPU time (all of this
process's threads) is printed beside it as the steadier measure. Two ratios are printed:

* ``same steps_per_execution``: both runs use the chunk size the runner picks when stepped probes
  are on (a divisor of ``--every-steps``): the cost of the measurements alone;
* ``runner setup``: the baseline gets the runner's no-probe chunk size (a whole epoch): what a
  user sees when switching probes on in a study.

Usage: ``python benchmarks/bench_probes.py [--epochs 20] [--repeats 4] [--every-steps 20]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ablation import data, probes, training, zoo  # noqa: E402
from ablation.spec import TrainSpec  # noqa: E402


class _EpochClock(keras.callbacks.Callback):
    """Wall and process-CPU time between consecutive epoch ends (placed last: probe work is inside)."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: list[tuple[float, float]] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.ends = [(time.perf_counter(), time.process_time())]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.ends.append((time.perf_counter(), time.process_time()))


def _epoch_times(ds: data.Dataset, train: TrainSpec, spe: int, names: tuple[str, ...],
                 every: int) -> np.ndarray:
    """Steady-state (wall, CPU) seconds of each epoch after the first two, one fresh run."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(40,), num_classes=10, hidden=(100, 100, 100), dropout=0.5)
    training.compile_model(model, train, spe)
    idx = np.random.default_rng(0).permutation(len(ds.x_train))[:512]
    cbs = probes.make(names, model=model, probe_x=ds.x_train[idx], probe_y=ds.y_train[idx],
                      every_steps=every, target_train_error=0.25)
    clock = _EpochClock()
    training.fit(model, ds.x_train, ds.y_train, train=train, seed=0,
                 validation=(ds.x_test[:500], ds.y_test[:500]), callbacks=[*cbs, clock])
    return np.diff(np.array(clock.ends), axis=0)[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--every-steps", type=int, default=20)
    args = parser.parse_args()
    ds = data.load("mnist1d")
    train = TrainSpec(epochs=args.epochs, batch_size=100, optimizer="sgd", learning_rate=0.05)
    steps = -(-len(ds.x_train) // train.batch_size)
    spe_off = training.steps_per_execution(train, steps)
    spe_on = training.steps_per_execution(train, steps, args.every_steps)
    runs = {"off_runner": (spe_off, ()), "off_same": (spe_on, ()), "on": (spe_on, probes.PROBES)}
    times: dict[str, list[np.ndarray]] = {key: [] for key in runs}
    for _ in range(args.repeats):  # interleaved, so slow phases of a shared machine hit all three
        for key, (spe, names) in runs.items():
            times[key].append(_epoch_times(ds, train, spe, names, args.every_steps))
    pooled = {key: np.concatenate(v) for key, v in times.items()}
    print(f"MNIST-1D {len(ds.x_train)} examples, 40-100-100-100-10, batch 100, {steps} steps/epoch, "
          f"probes {probes.PROBES}, every_steps={args.every_steps}, probe batch 512; "
          f"{args.repeats} runs x {args.epochs - 2} steady-state epochs each")
    print(f"steps_per_execution: {spe_off} without stepped probes, {spe_on} with them")
    labels = {"off_runner": f"no probes, spe={spe_off}", "off_same": f"no probes, spe={spe_on}",
              "on": f"all probes, spe={spe_on}"}
    med = {key: np.median(v, axis=0) for key, v in pooled.items()}
    for key, label in labels.items():
        print(f"  median epoch {label:<24} wall {1000 * med[key][0]:7.2f} ms   CPU {1000 * med[key][1]:7.2f} ms")
    for base, what in (("off_same", "same steps_per_execution"), ("off_runner", "runner setup")):
        wall, cpu = med["on"] / med[base]
        paired = [np.median(on, axis=0) / np.median(off, axis=0) for on, off in zip(times["on"], times[base])]
        print(f"ratio all probes / none ({what}): wall {wall:.3f}, CPU {cpu:.3f}; per run (wall) "
              + " ".join(f"{r[0]:.2f}" for r in paired))


if __name__ == "__main__":
    main()
