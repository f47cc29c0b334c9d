"""Paper-scale MNIST check of the zoo on a GPU, with Keras' JAX backend.

The lent GPU machines carry JAX but not TensorFlow, so this script uses only the backend-neutral
parts of keras-ablation (``zoo``, ``data``) with ``model.fit`` under ``KERAS_BACKEND=jax``:

1. every registered zoo variant builds, saves and loads back under JAX (cross-backend check);
2. float32 vs ``mixed_bfloat16``: seconds per epoch of ``srivastava2014_mnist`` (784-2048-2048-2048-10);
3. Srivastava et al. 2014, Fig. 4 / Table 2 analogue: the same 784-2048-2048-2048-10 ReLU net with
   dropout (0.5 hidden, 0.2 input, max-norm 2) and without, SGD with momentum, on MNIST
   (50,000 train / the last 10,000 of train as validation / 10,000 test), within a time budget.

    KERAS_BACKEND=jax python benchmarks/gpu_paper_scale.py --data DIR --out OUT [--budget 300]

Writes OUT/gpu_paper_scale.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ablation import data, zoo  # noqa: E402


class Budget(keras.callbacks.Callback):
    """Stop training once ``seconds`` have passed (checked at epoch ends)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.t0, self.times = seconds, 0.0, []

    def on_train_begin(self, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._e = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._e)
        if time.perf_counter() - self.t0 > self.seconds:
            self.model.stop_training = True


def roundtrip() -> dict:
    out = {}
    x = np.random.default_rng(0).random((4, 784), dtype=np.float32)
    for name in zoo.list_models():
        small = {"hidden": (32, 32)} if "srivastava" in name or "wan" in name or "glorot" in name or "hinton" in name else {}
        if name == "zeiler2013_cnn":
            small = {"filters": (4, 8), "dense": (16,)}
        model = zoo.create(name, **small)
        shape = model.input_shape[1:]
        xin = x[:, : int(np.prod(shape))].reshape((4, *shape))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.keras")
            model.save(path)
            back = keras.saving.load_model(path)
        out[name] = bool(np.array_equal(np.asarray(model(xin, training=False)), np.asarray(back(xin, training=False))))
    return out


def train(ds, *, dropout: bool, policy: str, epochs: int, seconds: float, lr: float) -> dict:
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    over = {} if dropout else {"dropout": 0.0, "input_dropout": 0.0, "max_norm": None}
    model = zoo.create("srivastava2014_mnist", **over)
    sched = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=500, decay_rate=0.98)
    model.compile(optimizer=keras.optimizers.SGD(sched, momentum=0.95),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  steps_per_execution=50, jit_compile=True)
    budget = Budget(seconds)
    hist = model.fit(ds.x_train, ds.y_train, batch_size=100, epochs=epochs, validation_data=(ds.x_val, ds.y_val),
                     callbacks=[budget], verbose=0)
    test = model.evaluate(ds.x_test, ds.y_test, batch_size=1000, verbose=0, return_dict=True)
    keras.config.set_dtype_policy("float32")
    val_err = [1 - a for a in hist.history["val_accuracy"]]
    return {"dropout": dropout, "policy": policy, "epochs_run": len(val_err), "lr": lr,
            "epoch_seconds_median": float(np.median(budget.times[1:] or budget.times)),
            "first_epoch_seconds": budget.times[0], "val_error_per_epoch": val_err,
            "best_val_error": min(val_err), "test_error_final": 1 - test["accuracy"],
            "train_loss_final": hist.history["loss"][-1], "params": model.count_params()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of the four MNIST IDX files")
    p.add_argument("--out", required=True)
    p.add_argument("--budget", type=float, default=300, help="seconds for the dropout vs no-dropout runs together")
    p.add_argument("--smoke", action="store_true", help="tiny run to check the script (2,000 examples, 1 epoch)")
    args = p.parse_args()
    res: dict = {"backend": keras.backend.backend(), "keras": keras.__version__, "python": platform.python_version()}
    if res["backend"] == "jax":
        import jax

        res.update(jax=jax.__version__, devices=[str(d) for d in jax.devices()])
    t = time.perf_counter()
    res["roundtrip"] = roundtrip()
    res["roundtrip_seconds"] = time.perf_counter() - t
    print("round-trip identical predictions:", sum(res["roundtrip"].values()), "/", len(res["roundtrip"]), flush=True)
    ds = data.load("mnist", data_dir=args.data).validation_split()
    epochs = 3
    if args.smoke:
        ds, epochs, args.budget = ds.subset(2000, seed=0), 1, 1.0
    res["precision"] = [train(ds, dropout=True, policy=pol, epochs=epochs, seconds=1e9, lr=0.05)
                        for pol in ("float32", "mixed_bfloat16")]
    for r in res["precision"]:
        print(f"{r['policy']:15s} {r['epoch_seconds_median']:.2f} s/epoch (first {r['first_epoch_seconds']:.1f} s), "
              f"val error after {epochs} epochs {r['val_error_per_epoch'][-1]:.4f}", flush=True)
    res["dropout_vs_none"] = [train(ds, dropout=d, policy="mixed_bfloat16", epochs=1000, seconds=args.budget / 2,
                                    lr=0.05) for d in (True, False)]
    for r in res["dropout_vs_none"]:
        print(f"dropout={r['dropout']!s:5s} epochs {r['epochs_run']:3d}  best val error {r['best_val_error']:.4f}  "
              f"final test error {r['test_error_final']:.4f}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_paper_scale.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
