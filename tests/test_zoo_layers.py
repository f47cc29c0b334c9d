"""Numerics of the zoo's custom layers and of adaptive gradient clipping, against NumPy."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from ablation import zoo
from ablation.zoo.agc import clip_one
from conftest import backend_grads, to_numpy  # noqa: E402

pytestmark = pytest.mark.backends  # .ci/run runs this module under TensorFlow and under JAX


def _dropconnect(units: int, fan_in: int, rate: float, **kwargs) -> zoo.DropConnectDense:
    layer = zoo.DropConnectDense(units, rate=rate, seed=3, **kwargs)
    layer.build((None, fan_in))
    return layer


# ---- DropConnectDense ----

def test_dropconnect_mask_fraction_and_inverted_scaling():
    rate, batch, units = 0.3, 500, 200
    layer = _dropconnect(units, 4, rate, use_bias=False)
    layer.kernel.assign(np.ones((4, units), "float32"))
    x = np.zeros((batch, 4), "float32")
    x[:, 1] = 1.0                                   # output_j = mask_1j / keep
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    kept = np.isclose(out, 1.0 / (1.0 - rate))
    assert np.all(kept | (out == 0.0))              # only 0 or 1/keep: inverted scaling
    # 100,000 Bernoulli draws: the std of the dropped fraction is 0.0015; tolerance 0.01 (~7 sigma).
    assert abs((out == 0.0).mean() - rate) < 0.01
    assert not np.all(out == out[:1])               # per-example masks differ between rows


def test_dropconnect_per_batch_mask_is_shared_and_inference_is_deterministic():
    layer = _dropconnect(50, 4, 0.5, per_example=False, use_bias=False)
    layer.kernel.assign(np.ones((4, 50), "float32"))
    x = np.tile(np.array([[0.0, 1.0, 0.0, 0.0]], "float32"), (8, 1))
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert np.all(out == out[:1]) and 0 < (out[0] == 0).sum() < 50
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=False)), np.ones((8, 50)))


def test_dropconnect_inference_is_expectation_and_moments_match_monte_carlo():
    rng = np.random.default_rng(0)
    rate, n = 0.4, 20000
    layer = _dropconnect(5, 10, rate)
    kernel = rng.normal(size=(10, 5)).astype("float32")
    bias = rng.normal(size=5).astype("float32")
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)
    x = rng.normal(size=(1, 10)).astype("float32")
    samples = keras.ops.convert_to_numpy(layer(np.repeat(x, n, axis=0), training=True))
    inference = keras.ops.convert_to_numpy(layer(x, training=False))[0]
    np.testing.assert_allclose(inference, x[0] @ kernel + bias, rtol=1e-5, atol=1e-5)
    mean, var = (keras.ops.convert_to_numpy(t)[0] for t in layer.moments(x))
    keep = 1.0 - rate
    expected_var = (1 - keep) / keep * ((x[0] ** 2) @ (kernel**2) + bias**2)   # bias is masked too
    np.testing.assert_allclose(mean, inference, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(var, expected_var, rtol=1e-5)
    # Monte Carlo: mean within 5 standard errors, variance within 5% (its relative s.e. is ~1%).
    assert np.all(np.abs(samples.mean(0) - mean) < 5 * np.sqrt(var / n))
    np.testing.assert_allclose(samples.var(0), var, rtol=0.05)


def test_dropconnect_moments_without_bias_mask():
    layer = _dropconnect(3, 2, 0.5, mask_bias=False)
    layer.kernel.assign(np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 1.0]], "float32"))
    layer.bias.assign(np.array([5.0, 5.0, 5.0], "float32"))
    mean, var = layer.moments(np.array([[1.0, 2.0]], "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mean), [[12.0, 7.0, 7.0]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(var), [[37.0, 4.0, 4.0]])   # (1-p)/p = 1


# ---- StochasticPooling2D ----

def _np_regions(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(batch, rows, cols, size*size, channels) by explicit loops."""
    b, h, w, c = x.shape
    rows, cols = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.zeros((b, rows, cols, size * size, c), x.dtype)
    for r in range(rows):
        for q in range(cols):
            patch = x[:, r * stride:r * stride + size, q * stride:q * stride + size, :]
            out[:, r, q] = patch.reshape(b, size * size, c)
    return out


def test_stochastic_pooling_inference_is_probability_weighted_average():
    x = np.random.default_rng(1).uniform(0, 3, size=(2, 7, 7, 3)).astype("float32")
    x[0, :3, :3, 0] = 0.0                                           # an all-zero region
    for size, stride in [(2, 2), (3, 1)]:
        layer = zoo.StochasticPooling2D(pool_size=size, strides=stride)
        regions = _np_regions(x, size, stride)
        total = regions.sum(axis=3)
        expected = np.where(total > 0, (regions**2).sum(axis=3) / np.where(total > 0, total, 1), 0.0)
        got = keras.ops.convert_to_numpy(layer(x, training=False))
        assert got.shape == expected.shape == layer.compute_output_shape(x.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got[0, 0, 0, 0] == 0.0


def test_stochastic_pooling_samples_region_members_with_probability_p():
    region = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")          # p = 0.1, 0.2, 0.3, 0.4
    x = np.zeros((4000, 2, 4, 2), "float32")
    x[:, :, :2, 0] = region
    x[:, :, 2:, 0] = [[0.0, 5.0], [0.0, 1.0]]                       # zeros must never be drawn
    x[:, :, :2, 1] = 0.0                                            # all-zero region -> 0
    x[:, :, 2:, 1] = 7.0                                            # constant region -> 7
    out = keras.ops.convert_to_numpy(zoo.StochasticPooling2D(seed=5)(x, training=True))
    assert out.shape == (4000, 1, 2, 2)
    first = out[:, 0, 0, 0]
    assert set(np.unique(first)) <= {1.0, 2.0, 3.0, 4.0}
    freq = np.array([(first == v).mean() for v in (1.0, 2.0, 3.0, 4.0)])
    # 4000 draws: s.e. of each frequency <= 0.008; tolerance 0.035 (>4 s.e.).
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.035)
    second = out[:, 0, 1, 0]
    assert set(np.unique(second)) <= {5.0, 1.0}
    assert abs((second == 5.0).mean() - 5.0 / 6.0) < 0.035
    assert np.all(out[:, 0, 0, 1] == 0.0) and np.all(out[:, 0, 1, 1] == 7.0)


def test_stochastic_pooling_gradient_reaches_only_the_drawn_element():
    x = keras.ops.convert_to_tensor(np.random.default_rng(2).uniform(0.1, 1, (3, 4, 4, 2)).astype("float32"))
    layer = zoo.StochasticPooling2D(seed=1)
    layer.build(x.shape)
    state = [to_numpy(v) for v in layer.non_trainable_variables]  # the seed generator: the same draw twice
    (grad,) = backend_grads(lambda x_: keras.ops.sum(layer(x_, training=True)), [x])
    for v, value in zip(layer.non_trainable_variables, state):
        v.assign(value)
    y = to_numpy(layer(x, training=True))
    grad = _np_regions(grad, 2, 2)
    assert np.all(grad.sum(axis=3) == 1.0) and np.all((grad == 0) | (grad == 1))
    chosen = (_np_regions(to_numpy(x), 2, 2) * grad).sum(axis=3)
    np.testing.assert_array_equal(chosen, y)


# ---- ScaledWSDense and activation gains ----

def test_scaled_ws_kernel_is_standardized_per_unit():
    fan_in, units, gain = 30, 6, 1.7
    layer = zoo.ScaledWSDense(units, gain=gain, kernel_initializer=keras.initializers.RandomNormal(0.3, 2.0, seed=0))
    layer.build((None, fan_in))
    unit_gain = np.linspace(0.5, 2.0, units).astype("float32")
    layer.unit_gain.assign(unit_gain)
    w_hat = keras.ops.convert_to_numpy(layer.standardized_kernel())
    np.testing.assert_allclose(w_hat.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(w_hat.std(axis=0) * math.sqrt(fan_in), gain * unit_gain, rtol=1e-4)
    raw = keras.ops.convert_to_numpy(layer.kernel)
    ref = (raw - raw.mean(0)) / (raw.std(0) * math.sqrt(fan_in)) * gain * unit_gain
    x = np.random.default_rng(0).normal(size=(4, fan_in)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x @ ref, rtol=1e-4, atol=1e-4)


def test_activation_gain_matches_closed_form_and_monte_carlo():
    assert zoo.activation_gain("relu") == pytest.approx(math.sqrt(2.0 / (1.0 - 1.0 / math.pi)), rel=1e-6)
    assert zoo.activation_gain("linear") == pytest.approx(1.0, rel=1e-9)
    assert zoo.activation_gain("selu") == pytest.approx(1.0, abs=2e-3)       # SELU's fixed point
    z = np.random.default_rng(0).normal(size=2_000_000)
    assert zoo.activation_gain("tanh") == pytest.approx(1.0 / np.tanh(z).std(), rel=3e-3)
    leaky = np.where(z > 0, z, 0.2 * z)
    assert zoo.activation_gain("leaky_relu", leaky_slope=0.2) == pytest.approx(1.0 / leaky.std(), rel=3e-3)


# ---- adaptive gradient clipping ----

def _np_agc(g: np.ndarray, w: np.ndarray, lam: float, eps: float) -> np.ndarray:
    """Reference: unit = last axis; 1-D arrays are one unit."""
    if g.ndim <= 1:
        wn, gn = max(np.linalg.norm(w), eps), np.linalg.norm(g)
        return g * (lam * wn / gn) if gn / wn > lam else g
    out = g.copy()
    for j in range(g.shape[-1]):
        wn, gn = max(np.linalg.norm(w[..., j]), eps), np.linalg.norm(g[..., j])
        if gn / wn > lam:
            out[..., j] = g[..., j] * (lam * wn / gn)
    return out


def test_adaptive_clip_matches_numpy_reference():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 4)).astype("float32")
    g = rng.normal(size=(5, 4)).astype("float32")
    wn = np.linalg.norm(w, axis=0)
    g *= (np.array([0.5, 2.0, 0.9, 5.0]) * 0.01 * wn / np.linalg.norm(g, axis=0)).astype("float32")
    conv_w = rng.normal(size=(3, 3, 2, 3)).astype("float32")
    conv_g = rng.normal(size=(3, 3, 2, 3)).astype("float32") * 0.05
    bias_w, bias_g = np.zeros(4, "float32"), np.full(4, 1e-4, "float32")  # ||G||/eps = 0.2 > 0.01
    out = zoo.adaptive_clip([g, conv_g, bias_g, None], [w, conv_w, bias_w, bias_w], clipping=0.01, eps=1e-3)
    assert out[3] is None
    got = keras.ops.convert_to_numpy(out[0])
    np.testing.assert_array_equal(got[:, [0, 2]], g[:, [0, 2]])          # ratio 0.5, 0.9 x lambda: untouched
    np.testing.assert_allclose(np.linalg.norm(got[:, [1, 3]], axis=0), 0.01 * wn[[1, 3]], rtol=1e-5)
    np.testing.assert_allclose(got, _np_agc(g, w, 0.01, 1e-3), rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out[1]), _np_agc(conv_g, conv_w, 0.01, 1e-3), rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out[2]), np.full(4, 1e-3 * 0.01 / 2.0), rtol=1e-5)


def _tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return zoo.mlp(input_shape=(6,), num_classes=3, hidden=(5,), activation="tanh")


def test_agc_wrapper_step_in_fit_equals_manual_clipped_sgd():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6)).astype("float32"), rng.integers(0, 3, 16)
    model = _tiny_model()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    lr, lam = 0.5, 0.02
    before = [to_numpy(v).copy() for v in model.trainable_variables]
    fixed = [to_numpy(v) for v in model.non_trainable_variables]

    def loss_of(*values):
        out, _ = model.stateless_call(list(values), fixed, x, training=True)
        return loss(y, out)

    grads = backend_grads(loss_of, before)
    paths = [v.path for v in model.trainable_variables]
    expected = [w - lr * (g if "logits" in p else _np_agc(g, w, lam, 1e-3))
                for w, g, p in zip(before, grads, paths)]
    assert any(not np.allclose(_np_agc(g, w, lam, 1e-3), g) for w, g in zip(before, grads))  # clipping bites
    opt = zoo.AdaptiveGradientClipping(keras.optimizers.SGD(lr), clipping=lam)
    model.compile(opt, loss, jit_compile=True)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(to_numpy(got), want, rtol=1e-4, atol=1e-6)
    assert int(to_numpy(opt.iterations)) == 1 and float(to_numpy(opt.learning_rate)) == pytest.approx(lr)


def test_agc_wrapper_trains_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    model = _tiny_model()
    opt = zoo.AdaptiveGradientClipping(keras.optimizers.Adam(0.05), clipping=0.01, exclude=())
    model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    hist = model.fit(x, y, batch_size=16, epochs=8, verbose=0).history["loss"]
    assert hist[-1] < 0.8 * hist[0]
    model.save(tmp_path / "agc.keras")
    loaded = keras.models.load_model(tmp_path / "agc.keras")
    assert isinstance(loaded.optimizer, zoo.AdaptiveGradientClipping)
    assert loaded.optimizer.exclude == () and loaded.optimizer.clipping == 0.01
    assert isinstance(loaded.optimizer.inner_optimizer, keras.optimizers.Adam)
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"clipping": 0.0}, r"Invalid value for argument 'clipping': expected a positive float \(lambda\). "
                        r"Received: clipping=0.0"),
    ({"eps": -1.0}, r"Invalid value for argument 'eps': expected a positive float. Received: eps=-1.0"),
])
def test_agc_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        zoo.adaptive_clip([np.ones(2)], [np.ones(2)], **kwargs)
    with pytest.raises(ValueError, match=match):
        zoo.AdaptiveGradientClipping(keras.optimizers.SGD(0.1), **kwargs)


def test_agc_zero_gradient_stays_zero():
    got = keras.ops.convert_to_numpy(clip_one(np.zeros((3, 2), "float32"), np.ones((3, 2), "float32")))
    np.testing.assert_array_equal(got, np.zeros((3, 2)))


def test_custom_layers_configs_round_trip():
    layers = [zoo.DropConnectDense(4, rate=0.25, per_example=False, mask_bias=False, seed=7, activation="relu"),
              zoo.StochasticPooling2D(pool_size=3, strides=(1, 2), padding="same", seed=2),
              zoo.ScaledWSDense(4, gain=1.5, eps=1e-5)]
    for layer in layers:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    assert layers[0].get_config()["rate"] == 0.25 and layers[1].get_config()["strides"] == (1, 2)
