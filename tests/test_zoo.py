"""The zoo builders, the registry and argument validation."""

from __future__ import annotations

import inspect
import warnings

import keras
import numpy as np
import pytest

from ablation import zoo
from conftest import to_numpy  # noqa: E402
from ablation.zoo import checks, registry

pytestmark = pytest.mark.backends  # .ci/run runs this module under TensorFlow and under JAX

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

# The paper shapes each variant must have (hidden widths, activation, drop rates, max-norm).
PAPER = {
    "srivastava2014_mnist": ((2048, 2048, 2048), "relu", 0.5, 0.2, 2.0),
    "srivastava2014_size": ((1024, 1024, 2048), "relu", 0.5, 0.2, None),
    "srivastava2014_logistic_3x1024": ((1024, 1024, 1024), "sigmoid", 0.5, 0.2, None),
    "srivastava2014_relu_3x1024": ((1024, 1024, 1024), "relu", 0.5, 0.2, None),
    "srivastava2014_relu_3x1024_maxnorm": ((1024, 1024, 1024), "relu", 0.5, 0.2, 2.0),
    "srivastava2014_relu_2x4096_maxnorm": ((4096, 4096), "relu", 0.5, 0.2, 2.0),
    "srivastava2014_relu_2x8192_maxnorm": ((8192, 8192), "relu", 0.5, 0.2, 2.0),
    "srivastava2014_standard_2x800": ((800, 800), "sigmoid", None, None, None),
    "hinton2012_mnist": ((800, 800), "relu", 0.5, 0.2, 2.0),
    "ioffe2015_mnist": ((100, 100, 100), "sigmoid", None, None, None),
    "ioffe2015_mnist_bn": ((100, 100, 100), "sigmoid", None, None, None),
    "wan2013_mnist": ((800, 800), "relu", None, None, None),
    "wan2013_mnist_dropconnect": ((800, 800), "relu", None, None, None),
    "glorot2011_mnist": ((1000, 1000, 1000), "relu", None, None, None),
    "mnist1d_mlp": ((100, 100), "relu", None, None, None),
    "snn_selu": ((128,) * 8, "selu", 0.05, None, None),
    "zeiler2013_cnn": (None, "relu", None, None, None),
}


def _names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers]


def _small(name: str) -> dict:
    """Overrides that keep a variant tiny but keep its kind of layers."""
    return {"filters": (4, 4), "dense": (8,)} if registry.builder_of(name) == "cnn" else {"hidden": (16, 16)}


# ---- registry ----

def test_every_registered_variant_has_its_paper_shape():
    assert sorted(PAPER) == zoo.list_models()
    for name, (hidden, act, drop, in_drop, norm) in PAPER.items():
        args = zoo.variant_args(name)
        assert tuple(args.get("hidden", ())) == (hidden or ())
        assert args.get("activation", "relu") == act
        assert args.get("dropout") == drop and args.get("input_dropout") == in_drop
        assert args.get("max_norm") == norm
    assert zoo.variant_args("wan2013_mnist_dropconnect")["dropconnect"] == 0.5
    assert zoo.variant_args("ioffe2015_mnist_bn")["batchnorm"] == "before"
    assert "batchnorm" not in zoo.variant_args("ioffe2015_mnist")
    assert zoo.variant_args("zeiler2013_cnn")["pooling"] == "stochastic"
    assert zoo.variant_args("mnist1d_mlp")["input_shape"] == (40,)


def test_srivastava2014_mnist_has_exactly_the_paper_parameter_count():
    model = zoo.create("srivastava2014_mnist")
    assert model.count_params() == 10_020_874 == 784 * 2048 + 2048 + 2 * (2048 * 2048 + 2048) + 2048 * 10 + 10
    assert model.name == "srivastava2014_mnist"
    assert model.get_layer("dense_1").kernel_constraint.max_value == 2.0


@pytest.mark.parametrize("name", zoo.list_models())
def test_variant_trains_one_step_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.create(name, **_small(name))
    assert model.name == name
    shape = model.input_shape[1:]
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(8, *shape)).astype("float32")
    y = rng.integers(0, 10, size=8)
    model.compile(keras.optimizers.SGD(0.01), LOSS, run_eagerly=True)
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)             # no custom_objects
    assert _names(loaded) == _names(model)
    np.testing.assert_array_equal(to_numpy(loaded(x, training=False)), to_numpy(model(x, training=False)))


def test_check_args_merges_and_validates_without_building():
    merged = zoo.check_args("hinton2012_mnist", dropout=0.3)
    assert merged["dropout"] == 0.3 and merged["hidden"] == (800, 800) and merged["input_dropout"] == 0.2
    assert zoo.check_args("mlp", hidden=[100, 100], dropout=0.5) == {"hidden": [100, 100], "dropout": 0.5}
    assert zoo.check_args("cnn", pooling="average") == {"pooling": "average"}
    with pytest.raises(ValueError) as from_check:
        zoo.check_args("mlp", hidden=(8,), dropout=1.5)
    with pytest.raises(ValueError) as from_builder:
        zoo.mlp(input_shape=(4,), num_classes=2, hidden=(8,), dropout=1.5)
    assert str(from_check.value) == str(from_builder.value)
    with pytest.raises(ValueError, match="Unrecognized argument 'pooling' for model 'wan2013_mnist'"):
        zoo.check_args("wan2013_mnist", pooling="max")


def test_argument_names_are_the_builder_signatures_and_the_check_tables():
    assert zoo.argument_names("mlp") == tuple(inspect.signature(zoo.mlp).parameters) == tuple(checks.MLP_CHECKS)
    assert zoo.argument_names("cnn") == tuple(inspect.signature(zoo.cnn).parameters) == tuple(checks.CNN_CHECKS)
    assert zoo.argument_names("srivastava2014_mnist") == zoo.argument_names("mlp")
    assert zoo.argument_names("zeiler2013_cnn") == zoo.argument_names("cnn")


def test_variant_args_is_a_copy_and_overrides_apply():
    zoo.variant_args("mnist1d_mlp")["hidden"] = (1,)
    assert zoo.variant_args("mnist1d_mlp")["hidden"] == (100, 100)
    model = zoo.create("mnist1d_mlp", hidden=(7,), input_shape=(12,), name="mine")
    assert model.name == "mine" and model.input_shape == (None, 12) and model.get_layer("dense_1").units == 7


def test_unknown_model_lists_what_exists():
    with pytest.raises(ValueError, match=r"Unknown model 'nope': expected 'mlp', 'cnn' or a registered variant "
                                         r"\(mlp, cnn, glorot2011_mnist, .*zeiler2013_cnn\). Received: name='nope'"):
        zoo.create("nope")
    for fn in (zoo.variant_args, zoo.argument_names, zoo.check_args):
        with pytest.raises(ValueError, match="Unknown model 'nope'"):
            fn("nope")


def test_duplicate_registration_warns_and_builder_names_are_reserved():
    def tmp_variant(**overrides):
        return registry.build_variant("tmp_variant", overrides)

    try:
        zoo.register("mlp", hidden=(3,))(tmp_variant)
        with pytest.warns(UserWarning, match="Model 'tmp_variant' is already registered"):
            zoo.register("mlp", hidden=(4,))(tmp_variant)
        assert zoo.variant_args("tmp_variant") == {"hidden": (4,)}
        assert zoo.create("tmp_variant", input_shape=(2,), num_classes=2).get_layer("dense_1").units == 4
    finally:
        registry._REGISTRY.pop("tmp_variant", None)
    assert "tmp_variant" not in zoo.list_models()

    def mlp(**overrides):
        return None

    with pytest.raises(ValueError, match="Invalid value for argument 'name'"):
        zoo.register("mlp")(mlp)
    with pytest.raises(ValueError, match=r"Invalid value for argument 'dropout': expected a float in \[0, 1\)"):
        zoo.register("mlp", dropout=2.0)
    with pytest.raises(ValueError, match=r"Invalid value for argument 'builder'"):
        zoo.register("resnet")


# ---- mlp layer contract ----

def test_mlp_layer_names_in_order_and_logits_output():
    model = zoo.mlp(input_shape=(10,), num_classes=3, hidden=(8, 8), dropout=0.5, input_dropout=0.2)
    assert _names(model) == ["input", "input_dropout", "dense_1", "act_1", "dropout_1",
                             "dense_2", "act_2", "dropout_2", "logits"]
    assert model.output_shape == (None, 3)
    assert model.get_layer("logits").activation is keras.activations.linear
    assert model.get_layer("act_1").input is model.get_layer("dense_1").output      # pre-activation
    assert model.get_layer("dense_1").activation is keras.activations.linear
    soft = zoo.mlp(input_shape=(10,), num_classes=3, hidden=(8,), output_activation="softmax")
    assert _names(soft)[-2:] == ["logits", "output"]
    probs = to_numpy(soft(np.ones((2, 10), "float32")))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("mode, order, bias", [
    ("before", ["dense_1", "bn_1", "act_1"], False),
    (True, ["dense_1", "bn_1", "act_1"], False),
    ("after", ["dense_1", "act_1", "bn_1"], True),
])
def test_mlp_batchnorm_placement_and_bias(mode, order, bias):
    model = zoo.mlp(input_shape=(6,), num_classes=2, hidden=(5, 4), batchnorm=mode)
    assert _names(model)[1:4] == order
    assert model.get_layer("dense_1").use_bias is bias and model.get_layer("dense_2").use_bias is bias
    assert "bn_3" not in _names(model) and model.get_layer("logits").use_bias


def test_mlp_residual_adds_only_between_equal_widths():
    model = zoo.mlp(input_shape=(6,), num_classes=2, hidden=(6, 8, 8, 4, 4), residual=True, dropout=0.1)
    adds = [n for n in _names(model) if n.startswith("add_")]
    assert adds == ["add_3", "add_5"]
    add = model.get_layer("add_3")
    assert [t.name for t in add.input] == [model.get_layer("dropout_2").output.name,
                                           model.get_layer("dropout_3").output.name]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in ("dropout_2", "dropout_3", "add_3")])
    a, b, s = (to_numpy(t) for t in probe(np.ones((2, 6), "float32")))
    np.testing.assert_allclose(s, a + b, rtol=1e-6)


def test_mlp_flattens_image_inputs():
    model = zoo.mlp(input_shape=(4, 4), num_classes=2, hidden=(3,))
    assert _names(model)[:3] == ["input", "flatten", "dense_1"]
    assert model.get_layer("dense_1").kernel.shape == (16, 3)


@pytest.mark.parametrize("activation, expected", [
    ("relu", keras.initializers.HeNormal), ("gelu", keras.initializers.HeNormal),
    ("swish", keras.initializers.HeNormal), ("selu", keras.initializers.LecunNormal),
    ("tanh", keras.initializers.GlorotUniform), ("sigmoid", keras.initializers.GlorotUniform),
])
def test_auto_initializer_follows_the_activation(activation, expected):
    model = zoo.mlp(input_shape=(4,), num_classes=2, hidden=(3,), activation=activation)
    assert type(model.get_layer("dense_1").kernel_initializer) is expected


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_auto_standard_initializer_is_glorot_bengio_standard_for_saturating_units(activation):
    model = zoo.mlp(input_shape=(300,), num_classes=2, hidden=(200, 100), activation=activation,
                    kernel_initializer="auto_standard")
    init = model.get_layer("dense_2").kernel_initializer
    if activation == "relu":  # the ReLU family keeps the "auto" rule's He normal
        assert type(init) is keras.initializers.HeNormal
        return
    assert type(init) is keras.initializers.VarianceScaling
    kernel = to_numpy(model.get_layer("dense_2").kernel)  # U[-1/sqrt(200), 1/sqrt(200)]: variance 1/(3 * 200)
    assert np.abs(kernel).max() <= 1 / np.sqrt(200) and np.abs(kernel).max() > 0.9 / np.sqrt(200)
    assert kernel.var() == pytest.approx(1 / 600, rel=0.05)


def test_initializer_forms_and_seeding():
    model = zoo.mlp(input_shape=(400,), num_classes=2, hidden=(400, 400), kernel_initializer=0.05)
    init = model.get_layer("dense_2").kernel_initializer
    assert isinstance(init, keras.initializers.RandomNormal) and init.stddev == 0.05
    kernel = to_numpy(model.get_layer("dense_2").kernel)
    assert kernel.std() == pytest.approx(0.05, rel=0.02) and abs(kernel.mean()) < 0.002
    seeded = keras.initializers.RandomNormal(stddev=0.1, seed=4)
    m = zoo.mlp(input_shape=(5,), num_classes=5, hidden=(5, 5), kernel_initializer=seeded)
    assert not np.array_equal(to_numpy(m.get_layer("dense_2").kernel), to_numpy(m.get_layer("logits").kernel))
    cfg = {"class_name": "RandomUniform", "config": {"minval": -0.01, "maxval": 0.01}}
    m = zoo.mlp(input_shape=(5,), num_classes=2, hidden=(50,), kernel_initializer=cfg)
    assert np.abs(to_numpy(m.get_layer("dense_1").kernel)).max() <= 0.01
    m = zoo.mlp(input_shape=(5,), num_classes=2, hidden=(4,), kernel_initializer="zeros")
    assert not to_numpy(m.get_layer("dense_1").kernel).any()

    def weights(seed):
        keras.utils.set_random_seed(seed)
        return zoo.mlp(input_shape=(5,), num_classes=2, hidden=(4,)).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(weights(1), weights(1)))
    assert not np.array_equal(weights(1)[0], weights(2)[0])


def test_penalties_are_explicit_and_match_the_formula():
    model = zoo.mlp(input_shape=(5,), num_classes=3, hidden=(4, 4), l1=1e-3, l2=1e-2)
    reg = model.get_layer("dense_1").kernel_regularizer
    assert isinstance(reg, keras.regularizers.L1L2) and reg.l1 == pytest.approx(1e-3) and reg.l2 == pytest.approx(1e-2)
    kernels = [to_numpy(model.get_layer(n).kernel) for n in ("dense_1", "dense_2", "logits")]
    expected = sum(1e-3 * np.abs(k).sum() + 1e-2 * (k**2).sum() for k in kernels)   # no 1/2, no biases
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)
    assert zoo.mlp(input_shape=(5,), num_classes=3, hidden=(4,)).get_layer("dense_1").kernel_regularizer is None


def test_activity_l1_penalizes_hidden_activations():
    model = zoo.mlp(input_shape=(5,), num_classes=3, hidden=(4, 4), activity_l1=0.1)
    x = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    probe = keras.Model(model.input, [model.get_layer("act_1").output, model.get_layer("act_2").output])
    h1, h2 = (to_numpy(t) for t in probe(x))
    model(x)
    expected = 0.1 * (np.abs(h1).sum() + np.abs(h2).sum()) / 6             # Keras divides by batch size
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_max_norm_bounds_every_units_incoming_weights():
    keras.utils.set_random_seed(0)
    model = zoo.mlp(input_shape=(20,), num_classes=3, hidden=(16,), max_norm=0.5, kernel_initializer=1.0)
    model.compile(keras.optimizers.SGD(1.0), LOSS, run_eagerly=True)
    x = np.random.default_rng(0).normal(size=(32, 20)).astype("float32")
    model.train_on_batch(x, np.zeros(32, "int64"))
    for name in ("dense_1", "logits"):
        norms = np.linalg.norm(to_numpy(model.get_layer(name).kernel), axis=0)
        assert norms.max() <= 0.5 + 1e-5 and norms.max() > 0.49


@pytest.mark.parametrize("kind, cls", [("standard", keras.layers.Dropout),
                                       ("gaussian", keras.layers.GaussianDropout),
                                       ("alpha", keras.layers.AlphaDropout)])
def test_dropout_kinds(kind, cls):
    model = zoo.mlp(input_shape=(5,), num_classes=2, hidden=(4,), dropout=0.3, input_dropout=0.1, dropout_kind=kind)
    assert type(model.get_layer("dropout_1")) is cls and model.get_layer("dropout_1").rate == 0.3
    assert type(model.get_layer("input_dropout")) is cls and model.get_layer("input_dropout").rate == 0.1


def test_special_hidden_layers_and_leaky_slope():
    dc = zoo.mlp(input_shape=(5,), num_classes=2, hidden=(4, 4), dropconnect=0.4)
    assert all(isinstance(dc.get_layer(f"dense_{i}"), zoo.DropConnectDense) for i in (1, 2))
    assert dc.get_layer("dense_1").rate == 0.4 and type(dc.get_layer("logits")) is keras.layers.Dense
    ws = zoo.mlp(input_shape=(5,), num_classes=2, hidden=(4, 4), weight_standardization=True, activation="relu")
    assert isinstance(ws.get_layer("dense_2"), zoo.ScaledWSDense)
    assert ws.get_layer("dense_1").gain == 1.0
    assert ws.get_layer("dense_2").gain == pytest.approx(zoo.activation_gain("relu"))
    leaky = zoo.mlp(input_shape=(5,), num_classes=2, hidden=(4,), activation="leaky_relu")
    assert leaky.get_layer("act_1").negative_slope == pytest.approx(0.01)
    leaky = zoo.mlp(input_shape=(5,), num_classes=2, hidden=(4,), activation="leaky_relu", leaky_slope=0.2)
    out = keras.Model(leaky.input, leaky.get_layer("act_1").output)
    pre = keras.Model(leaky.input, leaky.get_layer("dense_1").output)
    x = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    p = to_numpy(pre(x))
    np.testing.assert_allclose(to_numpy(out(x)), np.where(p > 0, p, 0.2 * p), rtol=1e-6)
    assert set(zoo.ACTIVATIONS) == {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "swish",
                                    "softplus", "linear"}


# ---- cnn ----

@pytest.mark.parametrize("pooling, cls", [("max", keras.layers.MaxPooling2D),
                                          ("average", keras.layers.AveragePooling2D),
                                          ("stochastic", zoo.StochasticPooling2D)])
def test_cnn_reshapes_flat_inputs_and_pools(pooling, cls):
    model = zoo.cnn(input_shape=(784,), filters=(4, 6), dense=(8,), pooling=pooling, dropout=0.5)
    assert _names(model) == ["input", "reshape", "conv_1", "act_1", "pool_1", "conv_2", "act_2", "pool_2",
                             "flatten", "dense_3", "act_3", "dropout_3", "logits"]
    assert model.get_layer("reshape").output.shape == (None, 28, 28, 1)
    assert type(model.get_layer("pool_1")) is cls
    assert model.get_layer("pool_2").output.shape == (None, 7, 7, 6) and model.output_shape == (None, 10)
    small = zoo.cnn(input_shape=(8, 8, 1), filters=(2,), dense=(), num_classes=3)
    assert _names(small) == ["input", "conv_1", "act_1", "pool_1", "flatten", "logits"]


# ---- error messages ----

MLP_BASE = {"input_shape": (4,), "num_classes": 2, "hidden": (3,)}


MLP_ERRORS = [
    ({"dropout": 1.5}, r"^Invalid value for argument 'dropout': expected a float in \[0, 1\)\. Received: dropout=1\.5$"),
    ({"input_dropout": -0.1}, r"argument 'input_dropout': expected a float in \[0, 1\)\. Received: input_dropout=-0\.1"),
    ({"dropconnect": 1.0}, r"argument 'dropconnect': expected a float in \[0, 1\)\. Received: dropconnect=1\.0"),
    ({"activation": "relux"}, r"argument 'activation': expected one of \('sigmoid', 'tanh', 'relu', 'leaky_relu', "
                              r"'elu', 'selu', 'gelu', 'swish', 'softplus', 'linear'\)\. Received: activation='relux'"),
    ({"hidden": ()}, r"argument 'hidden': expected a non-empty sequence of positive integers\. Received: hidden=\(\)"),
    ({"hidden": (4, 0)}, r"argument 'hidden': expected a non-empty sequence .* Received: hidden=\(4, 0\)"),
    ({"hidden": "100"}, r"argument 'hidden': .* Received: hidden='100'"),
    ({"num_classes": 0}, r"argument 'num_classes': expected a positive integer\. Received: num_classes=0"),
    ({"input_shape": ()}, r"argument 'input_shape': expected a non-empty tuple of positive integers\. "
                          r"Received: input_shape=\(\)"),
    ({"l2": -1e-4}, r"argument 'l2': expected a finite float >= 0\. Received: l2=-0\.0001"),
    ({"l1": float("nan")}, r"argument 'l1': expected a finite float >= 0\. Received: l1=nan"),
    ({"activity_l1": "0.1"}, r"argument 'activity_l1': expected a finite float >= 0\. Received: activity_l1='0\.1'"),
    ({"max_norm": -2.0}, r"argument 'max_norm': expected None, 0 \(off\) or a positive float\. Received: max_norm=-2\.0"),
    ({"batchnorm": "middle"}, r"argument 'batchnorm': expected one of \(False, True, 'before', 'after'\)\. "
                              r"Received: batchnorm='middle'"),
    ({"batchnorm": 1}, r"argument 'batchnorm': .* Received: batchnorm=1$"),
    ({"dropout_kind": "bernoulli"}, r"argument 'dropout_kind': expected one of \('standard', 'gaussian', 'alpha'\)\. "
                                    r"Received: dropout_kind='bernoulli'"),
    ({"kernel_initializer": "nonsense"}, r"argument 'kernel_initializer': expected 'auto', 'auto_standard', "
                                         r"a Keras initializer name, config dict or instance, or a positive float .* "
                                         r"Received: kernel_initializer='nonsense'"),
    ({"kernel_initializer": -0.5}, r"argument 'kernel_initializer': .* Received: kernel_initializer=-0\.5"),
    ({"output_activation": "relu"}, r"argument 'output_activation': expected None \(logits\) or one of "
                                    r"\('softmax', 'log_softmax', 'sigmoid', 'linear'\)\. "
                                    r"Received: output_activation='relu'"),
    ({"leaky_slope": 1.5}, r"argument 'leaky_slope': expected a float in \[0, 1\)\. Received: leaky_slope=1\.5"),
    ({"weight_standardization": "yes"}, r"argument 'weight_standardization': expected True or False\. "
                                        r"Received: weight_standardization='yes'"),
    ({"residual": 1}, r"argument 'residual': expected True or False\. Received: residual=1"),
    ({"name": ""}, r"argument 'name': expected a non-empty string\. Received: name=''"),
    ({"dropconnect": 0.5, "weight_standardization": True},
     r"argument 'dropconnect': expected 0 when weight_standardization=True .* Received: dropconnect=0\.5"),
]


def test_mlp_and_check_args_reject_bad_arguments():
    for override, match in MLP_ERRORS:  # one test: each Keras teardown costs ~0.3 s
        with pytest.raises(ValueError, match=match):
            zoo.mlp(**{**MLP_BASE, **override})
        args = {k: v for k, v in {**MLP_BASE, **override}.items()
                if k not in ("input_shape", "num_classes") or k in override}
        with pytest.raises(ValueError, match=match):
            zoo.check_args("mlp", **args)


def test_unknown_argument_is_rejected_by_builder_and_check_args():
    with pytest.raises(ValueError, match=r"Unrecognized argument 'dropout_rate' for model 'mlp': expected one of "
                                         r"\('input_shape', .*'name'\)\. Received: dropout_rate=0\.5"):
        zoo.create("mlp", **MLP_BASE, dropout_rate=0.5)
    with pytest.raises(ValueError, match=r"Unrecognized argument 'dropout_rate' for model 'snn_selu'"):
        zoo.create("snn_selu", dropout_rate=0.5)
    with pytest.raises(ValueError, match=r"Unrecognized argument 'hidden' for model 'cnn'"):
        zoo.check_args("cnn", hidden=(3,))


CNN_ERRORS = [
    ({"pooling": "median"}, r"argument 'pooling': expected one of \('max', 'average', 'stochastic'\)\. "
                            r"Received: pooling='median'"),
    ({"pooling": "stochastic", "activation": "tanh"},
     r"argument 'activation': stochastic pooling .* non-negative activation, one of \('relu', 'sigmoid', "
     r"'softplus'\)\. Received: activation='tanh'"),
    ({"input_shape": (783,)}, r"argument 'input_shape': expected \(height, width, channels\), \(height, width\), "
                              r"or a flat length that is a perfect square\. Received: input_shape=\(783,\)"),
    ({"input_shape": (8, 8, 1), "filters": (2, 2, 2, 2)},
     r"argument 'input_shape': expected height and width >= pool_size\*\*len\(filters\) = 16\. "
     r"Received: input_shape=\(8, 8, 1\)"),
    ({"filters": ()}, r"argument 'filters': expected a non-empty sequence of positive integers\. Received: filters=\(\)"),
    ({"dense": (0,)}, r"argument 'dense': expected a sequence of positive integers\. Received: dense=\(0,\)"),
    ({"kernel_size": 0}, r"argument 'kernel_size': expected a positive integer or a pair of positive integers\. "
                         r"Received: kernel_size=0"),
    ({"pool_size": 2.5}, r"argument 'pool_size': expected a positive integer\. Received: pool_size=2\.5"),
]


def test_cnn_and_check_args_reject_bad_arguments():
    for override, match in CNN_ERRORS:
        with pytest.raises(ValueError, match=match):
            zoo.cnn(**override)
        with pytest.raises(ValueError, match=match):
            zoo.check_args("zeiler2013_cnn" if "pooling" not in override else "cnn", **override)


def test_layers_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"argument 'rate': expected a float in \[0, 1\)\. Received: rate=1\.0"):
        zoo.DropConnectDense(4, rate=1.0)
    with pytest.raises(ValueError, match=r"argument 'units': expected a positive integer\. Received: units=0"):
        zoo.ScaledWSDense(0)
    with pytest.raises(ValueError, match=r"argument 'gain': expected a positive float\. Received: gain=0"):
        zoo.ScaledWSDense(3, gain=0)
    with pytest.raises(ValueError, match=r"argument 'padding': expected one of \('valid', 'same'\)\. "
                                         r"Received: padding='full'"):
        zoo.StochasticPooling2D(padding="full")


def test_stochastic_layers_train_under_jit_compile():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv_1")(inputs)
    x = keras.layers.Flatten()(zoo.StochasticPooling2D()(x))
    x = zoo.DropConnectDense(8, rate=0.5, activation="relu", name="dense_2")(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))            # one XLA compile for both layers
    model.compile(keras.optimizers.SGD(0.1), LOSS, jit_compile=True)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, size=(32, 6, 6, 1)).astype("float32"), rng.integers(0, 4, 32)
    before = to_numpy(model.get_layer("conv_1").kernel).copy()
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert not np.array_equal(to_numpy(model.get_layer("conv_1").kernel), before)   # gradient got through both


def test_building_is_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.create("ioffe2015_mnist_bn", hidden=(4, 4))


def test_residual_branches_can_be_scaled_and_round_trip(tmp_path):
    """residual_scale = alpha gives x + alpha * f(x) (NF-ResNets), a scale_i layer before each add_i."""
    import numpy as np

    plain = zoo.mlp(input_shape=(8,), num_classes=3, hidden=(8, 8, 8), residual=True)
    scaled = zoo.mlp(input_shape=(8,), num_classes=3, hidden=(8, 8, 8), residual=True, residual_scale=0.2)
    assert not any(layer.name.startswith("scale_") for layer in plain.layers)
    assert [layer.name for layer in scaled.layers if layer.name.startswith("scale_")] == ["scale_2", "scale_3"]
    scaled.set_weights(plain.get_weights())
    x = np.random.default_rng(0).random((4, 8), dtype=np.float32)
    h1 = keras.Model(plain.inputs, plain.get_layer("act_1").output).predict(x, verbose=0)
    f2 = keras.Model(plain.inputs, plain.get_layer("act_2").output).predict(x, verbose=0)
    out2 = keras.Model(scaled.inputs, scaled.get_layer("add_2").output).predict(x, verbose=0)
    np.testing.assert_allclose(out2, h1 + 0.2 * f2, rtol=1e-5, atol=1e-6)
    path = tmp_path / "m.keras"
    scaled.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0), scaled.predict(x, verbose=0),
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"argument 'residual_scale': expected a float in \(0, 1\]"):
        zoo.mlp(input_shape=(8,), num_classes=3, hidden=(8, 8), residual=True, residual_scale=0.0)
