"""ablation.train.training: optimizers, schedules, the precision policy and the XLA rule."""

from __future__ import annotations

import dataclasses
import math

import keras
import pytest

from ablation.train import training
from ablation import zoo
from ablation.spec import TrainSpec

pytestmark = pytest.mark.backends  # .ci/run runs this module under TensorFlow and under JAX


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


def test_precision_policy_is_restored():
    before = keras.config.dtype_policy().name
    with training.precision_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        model = zoo.mlp(input_shape=(4,), num_classes=3, hidden=(8,))
        assert model.get_layer("dense_1").compute_dtype == "bfloat16"
        assert model.get_layer("logits").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == before


def test_sampling_layers_train_without_xla_on_a_tensorflow_cpu():
    dc = zoo.mlp(input_shape=(6,), num_classes=2, hidden=(8,), dropconnect=0.5)
    plain = zoo.mlp(input_shape=(6,), num_classes=2, hidden=(8,), dropout=0.5)
    if keras.backend.backend() == "jax":  # JAX always compiles with XLA
        assert training.use_xla([dc], recipe(jit_compile=False))
        return
    bare = zoo.mlp(input_shape=(6,), num_classes=2, hidden=(8,))
    assert training.use_xla([bare], recipe(jit_compile=True))
    assert not training.use_xla([bare], recipe(jit_compile=False))
    assert not training.use_xla([bare, dc], recipe(jit_compile=True))  # this machine has no GPU
    # dropout masks and convolutions: XLA measured slower (benchmarks/bench_models.py)
    assert not training.use_xla([plain], recipe(jit_compile=True))
    cnn = zoo.cnn(input_shape=(8, 8, 1), num_classes=10, filters=(4,), dense=(8,))
    assert not training.use_xla([cnn], recipe(jit_compile=True))


def test_large_bfloat16_steps_train_without_xla_on_a_tensorflow_cpu():
    # 784-512-512-10: ~670K parameters; batch 100 -> 0.40 GFLOP per step, batch 400 -> 1.6 GFLOP
    net = zoo.mlp(input_shape=(784,), num_classes=10, hidden=(512, 512))
    small = training.step_flops(net.count_params(), 100)
    large = training.step_flops(net.count_params(), 400)
    assert small < training.BF16_ONEDNN_FLOPS <= large
    if keras.backend.backend() == "jax":  # JAX always compiles with XLA
        assert training.use_xla([net], recipe(precision="mixed_bfloat16", batch_size=400))
        return
    assert training.use_xla([net], recipe(precision="mixed_bfloat16", batch_size=100))
    assert not training.use_xla([net], recipe(precision="mixed_bfloat16", batch_size=400))
    assert training.use_xla([net], recipe(precision="float32", batch_size=400))  # float32: XLA stays ahead


def test_convolutional_models_do_not_scan_chunks_on_a_cpu():
    """benchmarks/bench_conv_scan.py: a scanned chunk of conv steps is ~5x slower than the jitted step
    on a CPU; MLPs keep the scan. Nested models (a pack's members) are searched too."""
    mlp = zoo.mlp(input_shape=(40,), num_classes=10, hidden=(16,))
    cnn = zoo.cnn(input_shape=(8, 8, 1), num_classes=10, filters=(4,), dense=(8,))
    inp = keras.Input((8, 8, 1))
    nested = keras.Model(inp, cnn(inp))
    assert training.scan_suits([mlp])
    assert not training.scan_suits([cnn]) and not training.scan_suits([mlp, nested])


def test_choose_path_applies_the_rule_and_says_why():
    """training.choose_path: one rule for the path (scan / keras, XLA on or off), with its reason."""
    mlp = zoo.mlp(input_shape=(40,), num_classes=10, hidden=(16,))
    cnn = zoo.cnn(input_shape=(8, 8, 1), num_classes=10, filters=(4,), dense=(8,))
    tf = keras.backend.backend() == "tensorflow"
    p = training.choose_path([mlp], recipe(jit_compile=True), full_batches=True)
    assert (p.name, p.xla) == ("scan", True) and "scanned" in p.reason
    p = training.choose_path([cnn], recipe(jit_compile=True), full_batches=True)
    assert (p.name, p.xla) == ("keras", not tf) and ("no XLA" if tf else "convolution") in p.reason
    p = training.choose_path([mlp], recipe(jit_compile=True), full_batches=False)
    assert p.name == ("keras" if tf else "scan")
    p = training.choose_path([mlp], recipe(jit_compile=False), full_batches=True)
    assert (p.name, p.xla) == (("keras", False) if tf else ("scan", True))
    assert training.choose_path([mlp], recipe(jit_compile=True), True, force="keras").reason == "forced: keras"
    with pytest.raises(ValueError, match="'force'"):
        training.choose_path([mlp], recipe(jit_compile=True), True, force="loop")
    if tf:  # a scanned chunk is one XLA program
        with pytest.raises(ValueError, match="'force'.*XLA is off"):
            training.choose_path([mlp], recipe(jit_compile=False), True, force="scan")


def test_path_summary_counts_trials_per_path():
    results = [{"backend": "jax", "train_path": "scan", "xla": True, "train_path_reason": "r1"}] * 3 + [
        {"backend": "jax", "train_path": "keras", "xla": True, "train_path_reason": "r2"}, {"status": "failed"}]
    assert training.path_summary(results) == [
        {"backend": "jax", "path": "scan", "xla": True, "reason": "r1", "trials": 3},
        {"backend": "jax", "path": "keras", "xla": True, "reason": "r2", "trials": 1}]
