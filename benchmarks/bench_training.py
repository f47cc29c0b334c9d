"""Per-step cost of the runner's training path against a default fit and a hand-written XLA loop.

Trains the quickstart MLP (MNIST-1D, 40-100-100-10, batch 100, Adam) for the same number of
steps three ways in one process and prints ms/step and ratios:

1. the runner's path (``ablation.training``: cached tf.data, steps_per_execution, XLA);
2. a default ``model.fit`` on NumPy arrays with per-epoch validation;
3. a hand-written training loop: one ``tf.function(jit_compile=True)`` step per batch.

Target (issue 3): runner / hand-written <= 1.5. Timings on a shared machine are noisy: each way
is measured ``--repeats`` times and the best is kept.

    python benchmarks/bench_training.py [--epochs 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from ablation import data, spec, training, zoo  # noqa: E402


def build(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return zoo.create("mnist1d_mlp", input_shape=(40,), num_classes=10)


def runner_path(ds, train, epochs: int) -> float:
    model = build()
    steps = -(-len(ds.x_train) // train.batch_size)
    training.compile_model(model, train, training.steps_per_execution(train, steps))
    val = (ds.x_val, ds.y_val)
    warm = dataclasses.replace(train, epochs=1)
    training.fit(model, ds.x_train, ds.y_train, train=warm, seed=0, validation=val)  # compile
    run = dataclasses.replace(train, epochs=epochs)
    t = time.perf_counter()
    training.fit(model, ds.x_train, ds.y_train, train=run, seed=0, validation=val)
    return (time.perf_counter() - t) / (epochs * steps)


def default_fit(ds, train, epochs: int) -> float:
    model = build()
    model.compile(optimizer=training.make_optimizer(train),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    steps = -(-len(ds.x_train) // train.batch_size)
    kw = dict(batch_size=train.batch_size, validation_data=(ds.x_val, ds.y_val), verbose=0)
    model.fit(ds.x_train, ds.y_train, epochs=1, **kw)
    t = time.perf_counter()
    model.fit(ds.x_train, ds.y_train, epochs=epochs, **kw)
    return (time.perf_counter() - t) / (epochs * steps)


def hand_loop(ds, train, epochs: int) -> float:
    model = build()
    opt = training.make_optimizer(train)
    opt.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=True)
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply(grads, model.trainable_variables)
        return loss

    bs = train.batch_size
    n = len(ds.x_train) // bs * bs
    x = tf.constant(ds.x_train[:n].reshape(-1, bs, ds.x_train.shape[1]))
    y = tf.constant(ds.y_train[:n].reshape(-1, bs))
    for i in range(x.shape[0]):
        step(x[i], y[i])
    t = time.perf_counter()
    for _ in range(epochs):
        for i in range(x.shape[0]):
            loss = step(x[i], y[i])
    float(loss)
    return (time.perf_counter() - t) / (epochs * x.shape[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    s = spec.load(spec.find_study("quickstart"))
    ds = data.load("mnist1d").validation_split(s.data.validation_size)
    train = s.resolve(s.points()[0], 0).train
    ways = {"runner path": runner_path, "default fit (NumPy)": default_fit, "hand-written XLA loop": hand_loop}
    best = {name: min(fn(ds, train, args.epochs) for _ in range(args.repeats)) for name, fn in ways.items()}
    print(f"quickstart MLP, batch {train.batch_size}, {len(ds.x_train)} examples, {args.epochs} epochs, "
          f"best of {args.repeats}; TF {tf.__version__}, Keras {keras.__version__}")
    for name, sec in best.items():
        print(f"  {name:24s} {sec * 1e3:7.3f} ms/step")
    hand = best["hand-written XLA loop"]
    print(f"  runner / hand-written   {best['runner path'] / hand:7.2f}x   (target <= 1.5x)")
    print(f"  default fit / hand      {best['default fit (NumPy)'] / hand:7.2f}x")


if __name__ == "__main__":
    main()
