"""Evaluation modes: weight scaling, Monte-Carlo dropout, DropConnect Gaussian inference."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ablation.data import evaluation
from ablation import zoo

pytestmark = pytest.mark.backends  # .ci/run runs this module under TensorFlow and under JAX


def _data(n: int, d: int = 10, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    return x, np.argmax(x @ rng.normal(size=(d, classes)), axis=1).astype("int64")


def _trained(**kwargs) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A small MLP trained for 10 epochs on 1000 linearly separable examples; 400 test examples."""
    keras.utils.set_random_seed(0)
    x, y = _data(1400)
    model = zoo.mlp(input_shape=(10,), num_classes=3, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x[:1000], y[:1000], epochs=10, batch_size=50, verbose=0)
    return model, x[1000:], y[1000:]


def _value(rows, mode, k, metric="test_error"):
    (row,) = [r for r in rows if r["mode"] == mode and r["k"] == k and r["metric"] == metric]
    return row["value"]


def test_weight_scaling_equals_keras_evaluate():
    model, x, y = _trained(hidden=(32,), dropout=0.5)
    rows = evaluation.weight_scaling(model, x, y, batch_size=64)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert _value(rows, "weight_scaling", 0, "test_loss") == pytest.approx(loss, rel=1e-5)
    assert _value(rows, "weight_scaling", 0) == pytest.approx(1 - accuracy, abs=1e-6)
    assert all(set(r) == {"mode", "k", "metric", "value"} for r in rows)


def test_mc_dropout_approaches_weight_scaling_as_k_grows():
    """Measured (seeds 0-2): error 0.04-0.05 weight-scaled, 0.11-0.14 for k = 1, 0.04-0.06 for
    k = 100. Tolerance: |k=100 - weight scaling| <= 0.03, while k = 1 is worse by >= 0.03."""
    model, x, y = _trained(hidden=(64, 64), dropout=0.5)
    ws = _value(evaluation.weight_scaling(model, x, y), "weight_scaling", 0)
    rows = evaluation.mc_dropout(model, x, y, ks=(1, 10, 100), seed=0, batch_size=128)
    assert [r["k"] for r in rows if r["metric"] == "test_error"] == [1, 10, 100]
    assert abs(_value(rows, "mc_dropout", 100) - ws) <= 0.03
    assert _value(rows, "mc_dropout", 1) - ws >= 0.03
    assert _value(rows, "mc_dropout", 100, "test_loss") < _value(rows, "mc_dropout", 1, "test_loss")
    again = evaluation.mc_dropout(model, x, y, ks=(1, 10, 100), seed=0, batch_size=128)
    assert again == rows                                   # the seed fixes the masks
    other = evaluation.mc_dropout(model, x, y, ks=(1,), seed=1)
    assert _value(other, "mc_dropout", 1, "test_loss") != _value(rows, "mc_dropout", 1, "test_loss")


def test_mc_dropout_keeps_batch_norm_in_inference_mode():
    """Dropout that (almost) never drops + BN whose moving statistics differ from any batch's:
    if BN ran on batch statistics the passes would differ from the inference pass."""
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(10,), num_classes=3, hidden=(16,), dropout=1e-7, batchnorm=True)
    bn = model.get_layer("bn_1")
    bn.moving_mean.assign(np.full(16, 2.0, "float32"))
    bn.moving_variance.assign(np.full(16, 9.0, "float32"))
    x, y = _data(200)
    ws = evaluation.weight_scaling(model, x, y)
    rows = evaluation.mc_dropout(model, x, y, ks=(1, 3))
    for k in (1, 3):
        assert _value(rows, "mc_dropout", k, "test_loss") == pytest.approx(
            _value(ws, "weight_scaling", 0, "test_loss"), rel=1e-5)
    training_mode = keras.ops.convert_to_numpy(model(x, training=True))
    inference = keras.ops.convert_to_numpy(model(x, training=False))
    assert np.abs(training_mode - inference).max() > 0.1      # the check above can fail


def test_mc_dropout_without_dropout_repeats_the_deterministic_pass():
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(10,), num_classes=3, hidden=(8,))
    x, y = _data(50)
    ws = _value(evaluation.weight_scaling(model, x, y), "weight_scaling", 0, "test_loss")
    rows = evaluation.mc_dropout(model, x, y, ks=(1, 5))
    assert [_value(rows, "mc_dropout", k, "test_loss") for k in (1, 5)] == pytest.approx([ws, ws], rel=1e-6)


def test_gaussian_dropconnect_layer_matches_monte_carlo_over_masks():
    """One sigmoid DropConnect layer (50 inputs, rate 0.5, per-example masks): the average of
    sigmoid(u) over Gaussian draws from moments() vs over 3000 sampled masks. Measured (seeds
    0-2): mean |difference| 0.004, max 0.018, while the mean network is off by 0.03-0.036.
    Tolerance: mean |difference| < 0.01, max < 0.05; the mean network at least 3x farther."""
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(50,), num_classes=3, hidden=(20,), activation="sigmoid", dropconnect=0.5)
    x = np.random.default_rng(0).normal(size=(16, 50)).astype("float32")
    dense, act = model.get_layer("dense_1"), model.get_layer("act_1")
    gaussian = evaluation._GaussianDropConnect(dense, [act], num_samples=3000, seed=0)
    got = keras.ops.convert_to_numpy(gaussian(x))
    tiled = np.tile(x, (3000, 1))                            # 3000 independent masks per example
    sampled = keras.ops.convert_to_numpy(act(dense(tiled, training=True)))
    expected = sampled.reshape(3000, 16, 20).mean(axis=0)
    assert np.abs(got - expected).mean() < 0.01 and np.abs(got - expected).max() < 0.05
    mean_net = keras.ops.convert_to_numpy(act(dense(x, training=False)))
    assert np.abs(mean_net - expected).mean() > 3 * np.abs(got - expected).mean()  # sampling matters


def test_dropconnect_modes_on_a_trained_net_with_batch_norm():
    """Measured (seeds 0-2): test error scaling 0.040-0.045, gaussian 0.030-0.048, mc 0.035-0.043.
    Tolerance: gaussian within 0.03 of the Monte-Carlo average over masks."""
    model, x, y = _trained(hidden=(50,), activation="sigmoid", dropconnect=0.5, batchnorm=True)
    rows = evaluation.dropconnect(model, x, y, modes=("scaling", "gaussian", "mc"), num_samples=200)
    assert {(r["mode"], r["k"]) for r in rows} == {("dropconnect_scaling", 0), ("dropconnect_gaussian", 200),
                                                   ("dropconnect_mc", 200)}
    ws = evaluation.weight_scaling(model, x, y)
    assert _value(rows, "dropconnect_scaling", 0) == _value(ws, "weight_scaling", 0)
    assert abs(_value(rows, "dropconnect_gaussian", 200) - _value(rows, "dropconnect_mc", 200)) <= 0.03


def test_dropconnect_on_a_model_without_dropconnect_gives_the_plain_pass():
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(10,), num_classes=3, hidden=(8,))
    x, y = _data(40)
    ws = _value(evaluation.weight_scaling(model, x, y), "weight_scaling", 0, "test_loss")
    rows = evaluation.dropconnect(model, x, y, num_samples=7)
    assert _value(rows, "dropconnect_gaussian", 7, "test_loss") == pytest.approx(ws, rel=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: evaluation.mc_dropout(m, x, y, ks=(0, 5)), "argument 'ks'"),
    (lambda m, x, y: evaluation.mc_dropout(m, x, y, ks=()), "argument 'ks'"),
    (lambda m, x, y: evaluation.weight_scaling(m, x, y, batch_size=0), "argument 'batch_size'.*batch_size=0"),
    (lambda m, x, y: evaluation.weight_scaling(m, x, y[:-1]), "argument 'y'"),
    (lambda m, x, y: evaluation.dropconnect(m, x, y, modes=("bayes",)), "argument 'modes'"),
    (lambda m, x, y: evaluation.dropconnect(m, x, y, num_samples=0), "argument 'num_samples'"),
])
def test_bad_arguments_raise(call, match):
    model = zoo.mlp(input_shape=(10,), num_classes=3, hidden=(4,), dropout=0.5)
    x, y = _data(20)
    with pytest.raises(ValueError, match=match):
        call(model, x, y)
