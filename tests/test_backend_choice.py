"""ablation.engine.backend_choice: the user's backend wins; otherwise convolutions or per-example sampling on a CPU ->
TensorFlow, else JAX."""

from __future__ import annotations

import pytest

from ablation.engine import backend_choice as bc
from ablation.engine import runner
from ablation.engine.options import RunOptions

BOTH = ("tensorflow", "jax")
CONV = bc.Traits(convolutional=True)


def test_the_rule_sends_convolutions_on_a_cpu_to_tensorflow_and_the_rest_to_jax():
    conv = bc.rule(CONV, gpu=False, installed=BOTH)
    assert (conv.backend, conv.chosen_by) == ("tensorflow", "rule")
    assert "bench_models" in conv.reason and "33.6 vs 98.3" in conv.reason  # the measured figures it rests on
    dense = bc.rule(bc.Traits(), gpu=False, installed=BOTH)
    assert (dense.backend, dense.reason) == ("jax", bc.DENSE_REASON)
    assert bc.rule(CONV, gpu=True, installed=BOTH).backend == "jax"  # not measured on a GPU
    assert bc.rule(CONV, gpu=False, installed=("jax",)).reason.endswith("TensorFlow is not installed")
    assert bc.rule(bc.Traits(), gpu=False, installed=("tensorflow",)).backend == "tensorflow"
    with pytest.raises(ValueError, match=r"^Invalid value for argument 'backend': .* Received: none installed$"):
        bc.rule(bc.Traits(), gpu=False, installed=())


def test_per_example_sampling_on_a_cpu_goes_to_tensorflow_too():
    sampling = bc.rule(bc.Traits(sampling=True), gpu=False, installed=BOTH)
    assert (sampling.backend, sampling.reason) == ("tensorflow", bc.SAMPLING_REASON)
    assert "283 vs 716" in sampling.reason  # the measured figures it rests on
    assert bc.rule(bc.Traits(True, True), gpu=False, installed=BOTH).reason == bc.CONV_REASON
    assert bc.rule(bc.Traits(sampling=True), gpu=True, installed=BOTH).backend == "jax"
    alone = bc.rule(bc.Traits(sampling=True), gpu=False, installed=("jax",))
    assert alone.reason == "per-example sampling layers on a CPU-only machine, but TensorFlow is not installed"
    assert bc.Traits(convolutional=True) | bc.Traits(sampling=True) == bc.Traits(True, True)


def test_traits_are_read_from_built_models():
    import keras

    from ablation.zoo import mlp

    assert bc.Traits.of([mlp(input_shape=(6,), num_classes=2, hidden=[4], dropconnect=0.5)]) == bc.Traits(sampling=True)
    per_batch = mlp(input_shape=(6,), num_classes=2, hidden=[4], dropconnect=0.5, dropconnect_per_example=False)
    assert bc.Traits.of([per_batch]) == bc.Traits()  # one small mask per batch: JAX stays the faster
    inputs = keras.Input((6, 6, 1))
    conv = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    assert bc.Traits.of([per_batch, conv]) == bc.Traits(convolutional=True)


def test_the_users_choice_always_wins_and_the_rule_only_chooses_local_workers():
    pinned = bc.decide("tensorflow", pinned="jax", by_rule=True, traits=CONV, gpu=False, installed=BOTH)
    assert (pinned.backend, pinned.chosen_by) == ("jax", "user")
    env = bc.decide("jax", pinned=None, by_rule=False, traits=CONV, gpu=False, installed=BOTH)
    assert (env.backend, env.chosen_by) == ("jax", "user")  # KERAS_BACKEND, or ablation.run's caller
    ruled = bc.decide("jax", pinned=None, by_rule=True, traits=CONV, gpu=False, installed=BOTH)
    assert (ruled.backend, ruled.chosen_by) == ("tensorflow", "rule")
    remote = runner.rule_cannot(RunOptions(workers=0, backend_rule=True))
    assert remote is not None and runner.rule_cannot(RunOptions(workers=1)) is None
    assert runner.rule_cannot(RunOptions(workers=1, in_process=True)) is not None
    kept = bc.decide("jax", pinned=None, by_rule=True, traits=CONV, where_not=remote)
    assert (kept.backend, kept.chosen_by) == ("jax", "default") and remote in kept.reason
    assert kept.text().startswith("jax (the default: workers on other machines")
    assert bc.BackendChoice("jax", "rule", "x").to_dict() == {"backend": "jax", "chosen_by": "rule", "reason": "x"}
