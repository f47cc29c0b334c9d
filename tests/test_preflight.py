"""ablation.engine.preflight: every recipe of a model function built and trained one step before the run."""

from __future__ import annotations

import numpy as np
import pytest

from ablation.engine import preflight
from ablation.engine.backend_choice import Traits
from ablation import spec
from ablation.spec import SpecError

MODEL = """
import keras

def dense(input_shape, num_classes, dropout=0.0):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dropout(dropout)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))

def conv(input_shape, num_classes, dropout=0.0):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(2, 3)(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Flatten()(x)))

class TrainingOnly(keras.layers.Layer):
    def call(self, x, training=None):
        if training:
            raise ValueError("this layer breaks in training")
        return x

def breaks(input_shape, num_classes, dropout=0.0):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(TrainingOnly()(inputs)))
"""

STUDY = """
[study]
name = "p"
seeds = [0, 1]

[data]
DATA

[model]
factory = "m.py:FUNCTION"

[train]
epochs = 1

[grid]
GRID
"""


def load(tmp_path, function="dense", grid="dropout = [0.0, 0.5]", data='path = "d.npz"'):
    (tmp_path / "m.py").write_text(MODEL)
    x = np.random.default_rng(0).random((20, 3), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(20) % 2, x_test=x[:4], y_test=np.arange(4) % 2)
    text = STUDY.replace("FUNCTION", function).replace("GRID", grid).replace("DATA", data)
    (tmp_path / "s.toml").write_text(text)
    return spec.load(tmp_path / "s.toml")


def test_one_recipe_per_model_and_training_recipe_not_per_seed(tmp_path):
    s = load(tmp_path, grid='dropout = [0.0, 0.5]\ntrain_size = [8, 16]')
    assert s.n_trials == 8
    assert [cfg.model_args["dropout"] for cfg in preflight.recipes(s)] == [0.0, 0.5]
    preflight.check_recipes(s)  # builds and trains both: no error


def test_strings_where_numbers_are_meant_name_the_grid_axis_and_the_type(tmp_path):
    s = load(tmp_path, grid='dropout = ["0.0", "0.5"]')
    with pytest.raises(SpecError) as exc:
        preflight.check_recipes(s)
    message = str(exc.value)
    assert message.startswith('grid.dropout: building the model with dense() at the grid point dropout="0.0" '
                              'raised TypeError: ') and "\n" not in message
    assert message.endswith('the values of grid.dropout are strings (str), e.g. "0.0": write numbers without quotes')


def test_a_failing_training_step_is_caught(tmp_path):
    s = load(tmp_path, function="breaks")
    with pytest.raises(SpecError, match=r"^model\.factory: one training step on 8 examples with breaks\(\) at the "
                                        r"grid point dropout=0\.0 raised ValueError: .*this layer breaks in training"):
        preflight.check_recipes(s)


def test_a_conv_net_on_a_flattened_built_in_set_is_told_about_flatten(tmp_path):
    s = load(tmp_path, function="conv", data='name = "digits"')
    with pytest.raises(SpecError, match=r"^model\.factory: building the model with conv\(\) .* raised ValueError: .*; "
                                        r"digits gives flat inputs of shape \(64,\) by default; for images of shape "
                                        r"\(8, 8, 1\) \(a convolutional model\) set flatten = false in \[data\]$"):
        preflight.check_recipes(s)
    preflight.check_recipes(load(tmp_path, function="conv", data='name = "digits"\nflatten = false'))


def test_one_line_unwraps_keras_call_errors():
    wrapped = ("RuntimeError: Exception encountered when calling Unlucky.call().\n\n\x1b[1mthirteen units are "
               "unlucky\x1b[0m\n\nArguments received by Unlucky.call():\n  • x=tf.Tensor(shape=(50, 13))")
    assert preflight.one_line(wrapped) == "RuntimeError: thirteen units are unlucky"
    assert preflight.one_line("ValueError: bad shape\nmore detail") == "ValueError: bad shape"
    assert preflight.one_line("x" * 400, limit=10) == "xxxxxxx..."


COUNTED = """
import keras

CALLS = []

def named(input_shape, num_classes, dropout=0.0):
    CALLS.append(dropout)
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dense(4, name="dense_1")(inputs)
    x = keras.layers.Activation("relu", name="act_1")(x)
    x = keras.layers.Dropout(0.5, name="dropout_1")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="logits")(x))
"""


def test_check_builds_each_recipe_once_and_shares_it_among_the_checks(tmp_path):
    """A generated ablation study with a layer probe: check_variants, check_recipes and check_layer_names
    once built the first model three times; now the function runs once per distinct model."""
    from ablation.trials import factory

    load(tmp_path)
    (tmp_path / "c.py").write_text(COUNTED)
    text = (tmp_path / "s.toml").read_text().replace("m.py:dense", "c.py:named").replace(
        "seeds = [0, 1]", 'seeds = [0, 1]\nprobes = ["activations"]').replace(
        "dropout = [0.0, 0.5]", 'ablate = ["full", "-dropout"]')
    (tmp_path / "s.toml").write_text(text)
    s = spec.load(tmp_path / "s.toml")
    calls = factory.load(s.model.factory).__globals__["CALLS"]
    seen = preflight.check(s, tmp_path / "runs")
    assert len(calls) == 1  # the function called once: both ablate arms are clones of that build
    assert seen.builds == 1 and seen.traits == Traits()  # check_variants' build; each arm a clone of it
    assert seen.first_model is None  # not kept past the checks


def test_checked_says_whether_a_model_has_convolutions_or_per_example_sampling(tmp_path):
    assert preflight.check(load(tmp_path, function="conv", data='name = "digits"\nflatten = false'),
                           tmp_path / "runs").traits == Traits(convolutional=True)
    assert preflight.check(load(tmp_path), tmp_path / "runs").traits == Traits()
    cnn = ('[study]\nname = "z"\nseeds = [0]\n[data]\nname = "digits"\nflatten = false\n'
           '[model]\nname = "cnn"\nfilters = [2]\ndense = []\n[train]\nepochs = 1\n[grid]\nkernel_size = [3, 5]\n')
    seen = preflight.check(spec.loads(cnn), tmp_path / "runs")
    assert seen.traits == Traits(convolutional=True) and seen.builds == 1  # from the registry; one build: the step's
    # a zoo MLP's per-example DropConnect, from the recipes' arguments (the mlp builder's default is per example)
    mlp = ('[study]\nname = "d"\nseeds = [0]\n[data]\nname = "digits"\n[model]\nname = "mlp"\nhidden = [4]\n'
           '[train]\nepochs = 1\n[grid]\ndropconnect = [0.0, 0.5]\n')
    assert preflight.zoo_traits(spec.loads(mlp)) == Traits(sampling=True)
    per_batch = spec.loads(mlp.replace("hidden = [4]", "hidden = [4]\ndropconnect_per_example = false"))
    assert preflight.zoo_traits(per_batch) == Traits()
    assert preflight.zoo_traits(spec.loads(mlp.replace("[0.0, 0.5]", "[0.0]"))) == Traits()
    stochastic = cnn.replace("kernel_size = [3, 5]", 'pooling = ["max", "stochastic"]')
    assert preflight.zoo_traits(spec.loads(stochastic)) == Traits(True, True)
