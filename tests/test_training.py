"""The runner's training path: optimizers, schedules, steps per execution, divergence guard."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import pytest

from ablation import training, zoo
from ablation.spec import TrainSpec


def recipe(**kw) -> TrainSpec:
    return dataclasses.replace(TrainSpec(momentum=0.0), **kw)


@pytest.mark.parametrize("name, cls", [("sgd", "SGD"), ("momentum", "SGD"), ("adam", "Adam"),
                                       ("adamw", "AdamW"), ("rmsprop", "RMSprop"), ("adagrad", "Adagrad"),
                                       ("nadam", "Nadam")])
def test_optimizer_names(name, cls):
    opt = training.make_optimizer(recipe(optimizer=name, learning_rate=0.03, momentum=0.9))
    assert type(opt).__name__ == cls
    assert math.isclose(float(opt.learning_rate), 0.03, rel_tol=1e-6)
    if name == "momentum":
        assert math.isclose(opt.momentum, 0.9)


def test_schedules_and_agc():
    exp = training.make_schedule(recipe(learning_rate=0.1, schedule={"kind": "exponential", "decay_steps": 10,
                                                                     "decay_rate": 0.5}))
    assert math.isclose(float(exp(10)), 0.05, rel_tol=1e-6)
    pw = training.make_schedule(recipe(schedule={"kind": "piecewise", "boundaries": [5], "values": [0.1, 0.01]}))
    assert math.isclose(float(pw(3)), 0.1, rel_tol=1e-6) and math.isclose(float(pw(7)), 0.01, rel_tol=1e-6)
    opt = training.make_optimizer(recipe(agc=0.02))
    assert isinstance(opt, zoo.AdaptiveGradientClipping)


def test_steps_per_execution():
    assert training.steps_per_execution(recipe(), 35) == 35
    assert training.steps_per_execution(recipe(), 5000) == training.MAX_STEPS_PER_EXECUTION
    assert training.steps_per_execution(recipe(steps_per_execution=4), 35) == 4
    # a probe sampling every 50 steps needs executions that divide 50
    assert training.steps_per_execution(recipe(), 35, every_steps=50) == 25
    assert training.steps_per_execution(recipe(), 120, every_steps=50) == 50


def test_precision_policy_is_restored():
    before = keras.config.dtype_policy().name
    with training.precision_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        model = zoo.mlp(input_shape=(4,), num_classes=3, hidden=(8,))
        assert model.get_layer("dense_1").compute_dtype == "bfloat16"
        assert model.get_layer("logits").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == before


def test_fit_trains_and_divergence_guard_stops():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(6,), num_classes=2, hidden=(16,))
    train = recipe(epochs=5, batch_size=32, optimizer="adam", learning_rate=0.01, jit_compile=False)
    training.compile_model(model, train, training.steps_per_execution(train, 8))
    log, guard = training.EpochLog(), training.Divergence()
    training.fit(model, x, y, train=train, seed=0, validation=(x[:64], y[:64]), callbacks=[guard, log])
    assert guard.reason is None
    assert log.history["epoch"] == [1, 2, 3, 4, 5] and log.history["step"][-1] == 40
    assert log.history["accuracy"][-1] > 0.9 and "val_loss" in log.history
    assert training.evaluate(model, x, y)["error"] < 0.1

    keras.utils.set_random_seed(0)
    bad = zoo.mlp(input_shape=(6,), num_classes=2, hidden=(16,))
    train = recipe(epochs=5, batch_size=32, learning_rate=1e30, jit_compile=False)
    training.compile_model(bad, train, 8)
    log, guard = training.EpochLog(), training.Divergence()
    training.fit(bad, x, y, train=train, seed=0, callbacks=[guard, log])
    assert guard.reason is not None and "loss became" in guard.reason
    assert guard.epoch == 1 and len(log.history["epoch"]) == 1  # stopped in the first epoch


def test_sampling_layers_train_without_xla_on_cpu():
    dc = zoo.mlp(input_shape=(6,), num_classes=2, hidden=(8,), dropconnect=0.5)
    plain = zoo.mlp(input_shape=(6,), num_classes=2, hidden=(8,), dropout=0.5)
    assert training.use_xla(plain, recipe(jit_compile=True))
    assert not training.use_xla(plain, recipe(jit_compile=False))
    assert not training.use_xla(dc, recipe(jit_compile=True))  # this machine has no GPU
    training.compile_model(dc, recipe(jit_compile=True), 4)
    assert dc.jit_compile is False


@pytest.mark.parametrize("output_activation, from_logits", [(None, True), ("linear", True), ("log_softmax", True),
                                                             ("softmax", False)])
def test_loss_reads_logits_unless_the_model_ends_in_softmax(output_activation, from_logits):
    model = zoo.mlp(input_shape=(4,), num_classes=3, hidden=(8,), output_activation=output_activation)
    training.compile_model(model, recipe(jit_compile=False), 1)
    assert model.loss.get_config()["from_logits"] is from_logits
