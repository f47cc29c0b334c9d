"""Probes against independent NumPy / GradientTape computations on tiny zoo MLPs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ablation.train import probes
from ablation import zoo

pytestmark = pytest.mark.backends  # .ci/run runs this module under TensorFlow and under JAX


def _grads(loss_of, values):
    """Gradients of ``loss_of(*values)`` by the backend's own autodiff: the reference the probes are held to."""
    values = [keras.ops.convert_to_tensor(v) for v in values]
    if keras.backend.backend() == "jax":
        import jax

        return [np.asarray(g) for g in jax.grad(lambda vs: loss_of(*vs))(values)]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(values)
        loss = loss_of(*values)
    return [g.numpy() for g in tape.gradient(loss, values)]


def _numpy(variable):
    return keras.ops.convert_to_numpy(variable)


def _data(n: int, d: int, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    w = rng.normal(size=(d, classes))
    return x, np.argmax(x @ w, axis=1).astype("int64")


def _at_init(names, model, x, y, **kwargs):
    """The probe callbacks after their initialization measurement (no training)."""
    cbs = probes.make(names, model=model, probe_x=x, probe_y=y, **kwargs)
    for cb in cbs:
        cb.set_model(model)
        cb.on_train_begin()
    return cbs


def _rows(cbs, stat, layer=None, step=None):
    return [r for r in probes.collect_rows(cbs)
            if r["stat"] == stat and (layer is None or r["layer"] == layer) and (step is None or r["step"] == step)]


def _tensor(model, x, layer, which="input"):
    layer = model.get_layer(layer)
    sub = keras.Model(model.inputs[0], layer.input if which == "input" else layer.output)
    return keras.ops.convert_to_numpy(sub(x, training=False)).astype(np.float64)


# ---- probes off, argument checks ----

def test_no_probes_means_no_callbacks_and_no_rows():
    model = zoo.mlp(input_shape=(4,), num_classes=2, hidden=(3,))
    assert probes.make([], model=model) == []
    assert probes.make((), model=None) == []      # nothing is built, not even checked
    assert probes.collect_rows([]) == [] and probes.collect_summary([]) == {}
    assert probes.collect_rows([keras.callbacks.History()]) == []


@pytest.mark.parametrize("kwargs, match", [
    ({"names": ["gradient"]}, "argument 'names'"),
    ({"names": ["timing", "timing"]}, "argument 'names'"),
    ({"names": ["speed"], "every_steps": 0}, "argument 'every_steps'.*Received: every_steps=0"),
    ({"names": ["speed"], "target_train_error": 1.5}, "argument 'target_train_error'"),
    ({"names": ["activations"], "probe_x": None}, "argument 'probe_x'"),
])
def test_make_rejects_bad_arguments(kwargs, match):
    model = zoo.mlp(input_shape=(4,), num_classes=2, hidden=(3,))
    x, y = _data(8, 4)
    args = {"model": model, "probe_x": x, "probe_y": y, **kwargs}
    with pytest.raises(ValueError, match=match):
        probes.make(args.pop("names"), **args)


def test_layer_probes_need_zoo_layer_names():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="relu")(inputs))
    x, y = _data(8, 4, classes=2)
    with pytest.raises(ValueError, match="expected a zoo MLP with layers named 'act_1'"):
        probes.make(["activations"], model=model, probe_x=x, probe_y=y)


# ---- gradients (A1) ----

def test_gradients_match_gradient_tape():
    keras.utils.set_random_seed(1)
    model = zoo.mlp(input_shape=(6,), num_classes=3, hidden=(8, 8, 8), activation="tanh")
    x, y = _data(64, 6)
    (cb,) = _at_init(["gradients"], model, x, y)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    names = ("dense_1", "dense_2", "dense_3", "logits")
    trainable = list(model.trainable_variables)
    where = [next(i for i, v in enumerate(trainable) if v is model.get_layer(n).kernel) for n in names]
    fixed = [_numpy(v) for v in model.non_trainable_variables]

    def loss_of(*values):
        out, _ = model.stateless_call(list(values), fixed, x, training=False)
        return loss_fn(y, out)

    grads = _grads(loss_of, [_numpy(v) for v in trainable])
    expected = [np.linalg.norm(grads[i]) for i in where]
    got = [r["value"] for r in _rows([cb], "kernel_grad_norm")]
    assert [r["depth"] for r in _rows([cb], "kernel_grad_norm")] == [1, 2, 3, 4]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # dLoss / d(pre-activation of layer 3), through act_3 and logits applied by hand
    z = _tensor(model, x, "act_3").astype("float32")
    (grad_z,) = _grads(lambda z_: loss_fn(y, model.get_layer("logits")(model.get_layer("act_3")(z_))), [z])
    (row,) = _rows([cb], "input_grad_norm", "act_3")
    np.testing.assert_allclose(row["value"], np.linalg.norm(grad_z), rtol=1e-5)


def test_deep_sigmoid_gradients_vanish_toward_the_input_relu_he_do_not():
    """6 x 32 at init. Measured (seeds 0-2): sigmoid first/last kernel-gradient ratio 2.5e-4 to
    6.4e-4 and pre-activation-gradient ratio ~6e-4; ReLU + He 0.18 to 0.36 and 0.98 to 1.21."""
    x, y = _data(256, 32, classes=10)
    ratios = {}
    for activation in ("sigmoid", "relu"):
        keras.utils.set_random_seed(0)
        model = zoo.mlp(input_shape=(32,), num_classes=10, hidden=(32,) * 6, activation=activation)
        ratios[activation] = probes.collect_summary(_at_init(["gradients"], model, x, y))
    assert ratios["sigmoid"]["grad_first_over_last_init"] < 0.01
    assert ratios["sigmoid"]["preact_grad_first_over_last_init"] < 0.01
    assert ratios["relu"]["grad_first_over_last_init"] > 0.1
    assert 0.5 < ratios["relu"]["preact_grad_first_over_last_init"] < 2.0


# ---- activations (A2, A4, A6) ----

def test_relu_he_sparsity_is_one_half_at_init():
    """Zero biases and symmetric weights: each pre-activation is > 0 with probability 1/2.
    Tolerance 0.05 on 1000 examples x 3 x 128 units (sampling std about 0.01)."""
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(64,), num_classes=10, hidden=(128, 128, 128), activation="relu")
    x, y = _data(1000, 64, classes=10)
    cbs = _at_init(["activations"], model, x, y)
    for i in (1, 2, 3):
        (row,) = _rows(cbs, "sparsity", f"act_{i}")
        assert row["value"] == pytest.approx(np.mean(_tensor(model, x, f"act_{i}", "output") == 0), abs=1e-12)
        assert abs(row["value"] - 0.5) < 0.05
    assert abs(probes.collect_summary(cbs)["sparsity_init"] - 0.5) < 0.05


def test_dead_unit_is_reported_and_live_one_is_not():
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(8,), num_classes=3, hidden=(16, 16), activation="relu")
    x, y = _data(256, 8)
    dense = model.get_layer("dense_1")
    bias = np.zeros(16, "float32")
    bias[3] = -1e3                                   # unit 3 of layer 1 can never fire
    dense.bias.assign(bias)
    cbs = _at_init(["activations"], model, x, y)
    assert _rows(cbs, "dead_fraction", "act_1")[0]["value"] == pytest.approx(1 / 16)
    assert _rows(cbs, "inactive_fraction", "act_1")[0]["value"] == pytest.approx(1 / 16)
    dense.bias.assign(np.zeros(16, "float32"))       # unit 3 alive again
    cbs = _at_init(["activations"], model, x, y)
    assert _rows(cbs, "dead_fraction", "act_1")[0]["value"] == 0.0


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_saturation_matches_numpy_count_with_known_weights(activation):
    model = zoo.mlp(input_shape=(2,), num_classes=2, hidden=(4,), activation=activation)
    kernel = np.array([[1.0, 10.0, -10.0, 0.1], [0.0, 0.0, 0.0, 0.0]], "float32")
    model.get_layer("dense_1").kernel.assign(kernel)
    model.get_layer("dense_1").bias.assign(np.zeros(4, "float32"))
    x = np.stack([np.linspace(-3, 3, 101), np.zeros(101)], axis=1).astype("float32")
    y = np.zeros(101, "int64")
    cbs = _at_init(["activations"], model, x, y)
    z = x.astype(np.float64) @ kernel.astype(np.float64)
    if activation == "sigmoid":
        a = 1 / (1 + np.exp(-z))
        expected = np.mean((a < 0.01) | (a > 0.99))
    else:
        expected = np.mean(np.abs(np.tanh(z)) > 0.99)
    assert 0.2 < expected < 0.6                       # the weights make both kinds of unit
    assert _rows(cbs, "saturation", "act_1")[0]["value"] == pytest.approx(expected, abs=1e-12)
    (mean_row,) = _rows(cbs, "preact_mean")
    assert mean_row["value"] == pytest.approx(z.mean(), abs=1e-6)


# ---- covariate shift (D2) ----

def test_covariate_percentiles_equal_numpy_and_follow_true_steps():
    """64 examples, batch 8 -> 8 steps per epoch; steps_per_execution=3 gives chunk ends
    3, 6, 8, 11, 14, 16; every_steps=4 samples the first chunk end at or after 4, 8, 12, 16."""
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(5,), num_classes=3, hidden=(10, 10, 7), activation="sigmoid")
    model.compile(optimizer=keras.optimizers.SGD(0.5), steps_per_execution=3,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(64, 5)
    cbs = probes.make(["covariate_shift"], model=model, probe_x=x[:40], probe_y=y[:40], every_steps=4)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=cbs)
    assert sorted({r["step"] for r in cbs[0].rows}) == [0, 6, 8, 14, 16]
    assert {r["layer"] for r in cbs[0].rows} == {"act_3/unit_0", "act_3/unit_3", "act_3/unit_6"}
    pre = _tensor(model, x[:40], "act_3")
    for unit in (0, 3, 6):
        got = [_rows(cbs, s, f"act_3/unit_{unit}", 16)[0]["value"] for s in ("p15", "p50", "p85")]
        np.testing.assert_allclose(got, np.percentile(pre[:, unit], [15, 50, 85]), rtol=1e-6)
    summary = probes.collect_summary(cbs)
    assert summary["shift_p50_range"] > 0 and summary["shift_spread_range"] > 0
    # the late ranges use only the samples at steps >= 16 / 2 = 8 (steps 8, 14, 16)
    late, whole = [], []
    for unit in (0, 3, 6):
        rows = [r for r in cbs[0].rows if r["layer"] == f"act_3/unit_{unit}" and r["stat"] == "p50"]
        whole.append(np.ptp([r["value"] for r in rows]))
        late.append(np.ptp([r["value"] for r in rows if r["step"] >= 8]))
    assert summary["shift_p50_range"] == pytest.approx(np.mean(whole))
    assert summary["shift_p50_range_late"] == pytest.approx(np.mean(late))


# ---- weights (B2, B3) ----

def test_weight_norms_and_small_fraction_match_numpy():
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(6,), num_classes=3, hidden=(5, 4))
    kernel = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    kernel[:, 2] = 0.0
    kernel[0, :] = 5e-4
    model.get_layer("dense_1").kernel.assign(kernel)
    x, y = _data(4, 6)
    cbs = _at_init(["weights"], model, x, y)
    norms = np.linalg.norm(kernel.astype(np.float64), axis=0)
    assert _rows(cbs, "unit_norm_max", "dense_1")[0]["value"] == pytest.approx(norms.max(), rel=1e-6)
    assert _rows(cbs, "unit_norm_mean", "dense_1")[0]["value"] == pytest.approx(norms.mean(), rel=1e-6)
    assert _rows(cbs, "small_fraction", "dense_1")[0]["value"] == pytest.approx(10 / 30)
    assert _rows(cbs, "abs_q50", "dense_1")[0]["value"] == pytest.approx(np.median(np.abs(kernel)), rel=1e-6)
    logits = _numpy(model.get_layer("logits").kernel)
    (row,) = _rows(cbs, "unit_norm_max", "logits")
    assert row["depth"] == 3 and row["value"] == pytest.approx(np.linalg.norm(logits, axis=0).max(), rel=1e-6)


def test_weight_norms_follow_training():
    """Measured during fit, the norms are those of the weights as trained so far, not of the weights the
    probe first saw (under JAX a jitted statistic that read a variable would keep its first value)."""
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(5,), num_classes=3, hidden=(8,))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(64, 5)
    init = np.linalg.norm(_numpy(model.get_layer("dense_1").kernel).astype(np.float64), axis=0)
    cbs = probes.make(["weights"], model=model, probe_x=x, probe_y=y)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=cbs)
    trained = np.linalg.norm(_numpy(model.get_layer("dense_1").kernel).astype(np.float64), axis=0)
    assert not np.allclose(trained, init, rtol=1e-3)                     # training moved the weights
    rows = _rows(cbs, "unit_norm_mean", "dense_1")
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["value"] == pytest.approx(init.mean(), rel=1e-6)
    assert rows[-1]["value"] == pytest.approx(trained.mean(), rel=1e-5)
    summary = probes.collect_summary(cbs)
    assert summary["unit_norm_cv_first_final"] == pytest.approx(trained.std() / trained.mean(), rel=1e-4)
    assert summary["unit_norm_cv_first_final"] != pytest.approx(summary["unit_norm_cv_first_init"], rel=1e-3)


# ---- timing and speed (A5, C6) ----

def test_speed_and_timing_during_fit():
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(5,), num_classes=3, hidden=(16,))
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(96, 5)
    cbs = probes.make(["timing", "speed"], model=model, probe_x=x[:64], probe_y=y[:64], every_steps=2,
                      target_train_error=0.2)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x[:16], y[:16]), callbacks=cbs)
    timing, speed = cbs
    assert [r["value"] for r in _rows(cbs, "steps")] == [6, 6, 6]
    for epoch in (1, 2, 3):
        train, wall, per_step = (next(r["value"] for r in _rows(cbs, s) if r["epoch"] == epoch)
                                 for s in ("train_time_s", "epoch_time_s", "step_time_s"))
        assert 0 < train < wall and per_step == pytest.approx(train / 6)
    errors = _rows(cbs, "train_error")
    assert [r["step"] for r in errors] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    logits = keras.ops.convert_to_numpy(model(x[:64], training=False))
    assert errors[-1]["value"] == pytest.approx(np.mean(np.argmax(logits, 1) != y[:64]))
    summary = probes.collect_summary(cbs)
    first = next(r for r in errors if r["value"] <= 0.2)   # the data are linearly separable
    assert summary["steps_to_target"] == first["step"] > 0
    elapsed = _rows(cbs, "elapsed_s", step=first["step"])[0]["value"]
    assert summary["seconds_to_target"] == elapsed > 0
    assert summary["train_error_init"] == errors[0]["value"] > 0.2


def test_steps_to_target_is_censored_when_never_reached():
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(5,), num_classes=3, hidden=(4,))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(32, 5)
    cbs = probes.make(["speed"], model=model, probe_x=x, probe_y=y, every_steps=2, target_train_error=1e-9)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=cbs)
    summary = probes.collect_summary(cbs)
    assert summary["target_reached"] == 0.0
    assert summary["steps_to_target"] == 8 + 2           # the last sample (step 8) plus one period: a lower bound
    assert summary["seconds_to_target"] > 0
    off = probes.collect_summary(_at_init(["speed"], model, x, y))
    assert np.isnan(off["steps_to_target"]) and np.isnan(off["target_reached"])   # no target asked for


def test_all_probes_rows_have_the_records_schema_and_summary_keys_are_documented():
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(5,), num_classes=3, hidden=(6, 6), batchnorm=True, dropout=0.2,
                    activation="sigmoid")
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(32, 5)
    cbs = probes.make(probes.PROBES, model=model, probe_x=x, probe_y=y, every_steps=3, target_train_error=0.5)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=cbs)
    rows = probes.collect_rows(cbs)
    assert {r["probe"] for r in rows} == set(probes.PROBES)
    assert all(set(r) == {"probe", "layer", "depth", "step", "epoch", "stat", "value"} for r in rows)
    assert {r["epoch"] for r in rows if r["probe"] == "gradients"} == {0, 1, 2}
    assert set(probes.collect_summary(cbs)) == set(probes.SUMMARY_KEYS)


def test_batchnorm_nets_are_probed_with_batch_statistics_and_left_unchanged():
    """Ioffe & Szegedy's Fig. 1 distributions are the training-time ones: BN uses the batch's statistics."""
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(10,), num_classes=3, hidden=(8, 8), activation="sigmoid", batchnorm="before")
    x = np.random.default_rng(0).standard_normal((64, 10)).astype("float32") * 3 + 1
    before = [_numpy(v).copy() for v in model.non_trainable_variables]
    (probe,) = probes.make(["covariate_shift"], model=model, probe_x=x, probe_y=np.zeros(64, "int64"))
    probe.set_model(model)
    probe.on_train_begin()
    h = x
    for i in (1, 2):  # dense -> batch-statistics BN (gamma 1, beta 0 at init) -> sigmoid, by hand
        z = _numpy(model.get_layer(f"dense_{i}")(h))
        normalized = (z - z.mean(0)) / np.sqrt(z.var(0) + model.get_layer(f"bn_{i}").epsilon)
        h = 1 / (1 + np.exp(-normalized))
    rows = {(r["layer"], r["stat"]): r["value"] for r in probe.rows}
    for (layer, stat), value in rows.items():
        unit = int(layer.split("_")[-1])
        q = {"p15": 15, "p50": 50, "p85": 85}[stat]
        assert value == pytest.approx(np.percentile(normalized[:, unit], q), abs=1e-4)
    after = [_numpy(v) for v in model.non_trainable_variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
