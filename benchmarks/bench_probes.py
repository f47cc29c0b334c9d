"""How much do the probes slow training down? Epoch time with every probe on vs none.

The quickstart-sized setup: MNIST-1D (4000 training examples, 40 features, 10 classes), the
zoo MLP 40-100-100-100-10 (ReLU, dropout 0.5), SGD, batch 100 (40 steps per epoch), the runner's
own training path (``ablation.trials.pack.train``, one member: ``model.fit`` with steps_per_execution,
per-epoch validation), probe batch 512, on the backend Keras runs on (``KERAS_BACKEND``).

An epoch's time is the wall time between consecutive epoch notes of the pack (so it includes the
probes' epoch-end measurements, their batch-hook samples and validation); the first two epochs
(tracing, compilation) are dropped and the median is taken. Runs with and without probes
alternate, each on a fresh model with the same seed. The runner's steps_per_execution is a divisor
of ``probe_every_steps`` when stepped probes are on and a whole epoch when none is: the ratio is
what a user sees when switching probes on in a study.

Wall time on a shared machine moves with other processes' load; process CPU time (all of this
process's threads) is printed beside it as the steadier measure.

Usage: ``python benchmarks/bench_probes.py [--epochs 20] [--repeats 4] [--every-steps 20]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ablation.trials import pack, trial  # noqa: E402
from ablation.train import probes
from ablation import spec
from ablation.engine.hypermodel import AblationHyperModel  # noqa: E402

STUDY = """
[study]
name = "bench_probes"
seeds = [0]
probes = {probes}
probe_every_steps = {every}
probe_size = 512
[data]
name = "mnist1d"
validation_size = 500
[model]
name = "mlp"
hidden = [100, 100, 100]
dropout = 0.5
[train]
epochs = {epochs}
batch_size = 100
optimizer = "sgd"
learning_rate = 0.05
[grid]
activation = ["relu"]
"""


def _epoch_times(names: tuple[str, ...], epochs: int, every: int) -> np.ndarray:
    """Steady-state (wall, CPU) seconds of each epoch after the first two, one fresh run."""
    keras.backend.clear_session()
    s = spec.loads(STUDY.format(probes=list(names), every=every, epochs=epochs).replace("'", '"'))
    cfg = s.resolve(s.points()[0], 0)
    member = trial.prepare(cfg, "00", AblationHyperModel(s).dataset(cfg))
    ends = [(time.perf_counter(), time.process_time())]
    (record,) = pack.train(s, [member], on_epoch=lambda note: ends.append((time.perf_counter(), time.process_time())))
    assert record.status == "completed", record.result.get("reason")
    return np.diff(np.array(ends), axis=0)[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--every-steps", type=int, default=20)
    args = parser.parse_args()
    runs = {"off": (), "on": probes.PROBES}
    times: dict[str, list[np.ndarray]] = {key: [] for key in runs}
    for _ in range(args.repeats):  # interleaved, so slow phases of a shared machine hit both
        for key, names in runs.items():
            times[key].append(_epoch_times(names, args.epochs, args.every_steps))
    pooled = {key: np.concatenate(v) for key, v in times.items()}
    print(f"MNIST-1D, 40-100-100-100-10, batch 100, 40 steps/epoch, backend {keras.backend.backend()}, "
          f"probes {probes.PROBES}, every_steps={args.every_steps}, probe batch 512; "
          f"{args.repeats} runs x {args.epochs - 2} steady-state epochs each")
    med = {key: np.median(v, axis=0) for key, v in pooled.items()}
    for key, label in (("off", "no probes"), ("on", "all probes")):
        print(f"  median epoch {label:<12} wall {1000 * med[key][0]:7.2f} ms   CPU {1000 * med[key][1]:7.2f} ms")
    wall, cpu = med["on"] / med["off"]
    paired = [np.median(on, axis=0) / np.median(off, axis=0) for on, off in zip(times["on"], times["off"])]
    print(f"ratio all probes / none: wall {wall:.3f}, CPU {cpu:.3f}; per run (wall) "
          + " ".join(f"{r[0]:.2f}" for r in paired))


if __name__ == "__main__":
    main()
