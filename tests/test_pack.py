"""Packs: members of one compiled model train exactly as they would alone, and never touch each other."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from ablation.trials import batches, pack, trial
from ablation import spec
from ablation.train import training
from ablation.engine.hypermodel import AblationHyperModel, declaration_order

pytestmark = pytest.mark.backends  # .ci/run runs this module under TensorFlow and under JAX

STUDY = """
[study]
name = "packs"
seeds = [0, 1]

[data]
name = "digits"
validation_size = 200
train_size = 600

[model]
name = "mlp"
hidden = [24, 24]

[train]
epochs = 4
batch_size = 50
optimizer = "adam"
learning_rate = 0.01

[grid]
activation = ["relu", "tanh"]
dropout = [0.0, 0.3]
"""


def _members(s: spec.StudySpec, trials: list[tuple[dict, int]]) -> list[trial.Member]:
    hm = AblationHyperModel(s)
    out = []
    for i, (point, seed) in enumerate(trials):
        cfg = s.resolve(point, seed)
        out.append(trial.prepare(cfg, f"{i:02d}", hm.dataset(cfg)))
    return out


def _alone_and_packed(s: spec.StudySpec, trials: list[tuple[dict, int]]):
    alone = [pack.train(s, _members(s, [t]))[0] for t in trials]
    keras.backend.clear_session()
    packed = pack.train(s, _members(s, trials))
    return alone, packed


def _same(a: trial.TrialRecord, b: trial.TrialRecord, rel: float = 1e-4) -> None:
    assert a.status == b.status == "completed"
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=rel)
    np.testing.assert_allclose(a.history["val_loss"], b.history["val_loss"], rtol=rel)
    for key in ("test_error", "test_loss", "train_error", "val_error"):
        assert a.result["metrics"][key] == pytest.approx(b.result["metrics"][key], rel=rel, abs=1e-7), key


def test_members_train_as_they_would_alone_without_dropout():
    s = spec.loads(STUDY)
    trials = [({"activation": a, "dropout": "0.0"}, seed) for a in ("relu", "tanh") for seed in (0, 1)]
    alone, packed = _alone_and_packed(s, trials)
    for a, b in zip(alone, packed):
        _same(a, b)
        assert a.result["pack_size"] == 1 and b.result["pack_size"] == 4
        assert a.result["epochs_run"] == b.result["epochs_run"] == 4
    # the seeds really differ (own initialization and data order), and training really trained
    assert alone[0].result["metrics"]["test_loss"] != alone[1].result["metrics"]["test_loss"]
    assert all(r.history["loss"][-1] < r.history["loss"][0] for r in packed)


def test_members_with_dropout_keep_their_own_masks():
    """Each member's dropout layers draw from their own seed generators: the same masks as alone."""
    s = spec.loads(STUDY)
    trials = [({"activation": "relu", "dropout": "0.3"}, seed) for seed in (0, 1)]
    alone, packed = _alone_and_packed(s, trials)
    for a, b in zip(alone, packed):
        _same(a, b)


def test_a_diverging_member_leaves_the_others_untouched():
    text = STUDY.replace('dropout = [0.0, 0.3]', 'kernel_initializer = ["auto", 1e20]').replace(
        'activation = ["relu", "tanh"]', 'activation = ["relu"]')
    s = spec.loads(text)
    healthy = [({"activation": "relu", "kernel_initializer": "auto"}, seed) for seed in (0, 1)]
    broken = ({"activation": "relu", "kernel_initializer": "1e+20"}, 0)
    without = pack.train(s, _members(s, healthy))
    keras.backend.clear_session()
    with_nan = pack.train(s, _members(s, [healthy[0], broken, healthy[1]]))
    bad = with_nan[1]
    assert bad.status == "diverged" and bad.result["failed_epoch"] == 1 and "loss became" in bad.result["reason"]
    assert bad.result["metrics"] == {} and len(bad.history["epoch"]) == 1
    for a, b in zip(without, [with_nan[0], with_nan[2]]):
        _same(a, b, rel=1e-6)


def test_early_stopping_acts_per_member_as_if_alone():
    text = STUDY.replace("epochs = 4", "epochs = 12").replace('dropout = [0.0, 0.3]', 'dropout = [0.0]').replace(
        'activation = ["relu", "tanh"]', 'activation = ["relu"]')
    text = text.replace("[grid]", '[grid]\nearly_stopping = [{ criterion = "patience", patience = 1 }, "none"]')
    s = spec.loads(text)
    trials = [({"activation": "relu", "dropout": "0.0", "early_stopping": lab}, 0)
              for lab in s.axis("early_stopping").labels]
    alone, packed = _alone_and_packed(s, trials)
    stopper, full = packed
    assert stopper.result["metrics"]["early_stopped"] == 1.0
    stopped_at = int(stopper.result["metrics"]["stopped_epoch"])
    assert stopped_at < 12 and stopper.result["epochs_run"] == stopped_at == len(stopper.history["epoch"])
    assert full.result["epochs_run"] == 12
    for key in ("test_error_at_stop", "test_error", "best_epoch"):
        assert stopper.result["metrics"][key] == pytest.approx(alone[0].result["metrics"][key], rel=1e-4)
    _same(alone[1], full)


def test_each_member_has_its_own_data_order():
    s = spec.loads(STUDY)
    members = _members(s, [({"activation": "relu", "dropout": "0.0"}, seed) for seed in (0, 1)])
    p = pack.Pack(s, members)
    epoch = batches.Batches(members, p.batch_size, p.steps)
    first = epoch[0]
    for r, m in enumerate(members):
        perm = np.random.default_rng([m.cfg.seed, 0]).permutation(600)[:50]
        np.testing.assert_array_equal(first[0][f"x{r}"], m.data.x_train[perm])
    epoch.on_epoch_end()
    perm = np.random.default_rng([0, 1]).permutation(600)[:50]
    np.testing.assert_array_equal(epoch[0][1]["m0"], members[0].data.y_train[perm])


def test_chunks_hold_the_same_batches_in_the_same_order():
    # 600 examples, batch 50 -> 12 steps; batch 70 -> 8 full steps and a last batch of 40
    s = spec.loads(STUDY)
    members = _members(s, [({"activation": "relu", "dropout": "0.0"}, seed) for seed in (0, 1)])
    for batch_size, chunk, every, lengths in ((50, 5, None, [4, 4, 4]), (70, 3, None, [3, 3, 2, 1]),
                                               (50, 4, 8, [4, 4, 4]), (50, 20, None, [12])):
        steps = batches.steps_per_epoch(600, batch_size)
        single = batches.Batches(members, batch_size, steps)
        chunks = batches.Batches(members, batch_size, steps, chunk=chunk, every=every)
        assert [chunks[i][0]["x0"].shape[0] for i in range(len(chunks))] == lengths
        assert chunks.steps_done(len(chunks) - 1) == steps
        for key, part in (("x1", 0), ("m0", 1)):
            stacked = np.concatenate([chunks[i][part][key].reshape(-1, *chunks[i][part][key].shape[2:])
                                      for i in range(len(chunks))])
            one_by_one = np.concatenate([single[i][part][key] for i in range(steps)])
            np.testing.assert_array_equal(stacked, one_by_one)


def test_a_chunk_holds_at_most_chunk_bytes_of_inputs_in_equal_parts():
    train = spec.TrainSpec()
    cap = batches.chunk_cap(example_bytes=784 * 4, batch_size=100)  # MNIST, one member: 313,600 bytes a step
    assert cap == batches.CHUNK_BYTES // 313_600 < 500
    assert batches.steps_per_execution(train, 500, cap=cap) == cap
    assert batches.steps_per_execution(train, 500, every=20, cap=cap) == 20  # a divisor of the sampling period
    assert batches.steps_per_execution(train, 500) == 500  # no cap: Keras' own steps_per_execution
    assert batches.chunk_cap(example_bytes=10**9, batch_size=100) == 1
    # 600 examples, batch 1: 600 full steps in chunks of at most `cap` (106), so six equal parts
    s = spec.loads(STUDY)
    b = batches.Batches(_members(s, [({"activation": "relu", "dropout": "0.0"}, 0)]), 1, 600, chunk=cap)
    assert {length for _, length in b.spans} == {100}


def _same_shape(a: trial.TrialRecord, b: trial.TrialRecord) -> None:
    """Records of two training paths: the same fields, metrics, curves and probe rows (values aside)."""
    assert set(a.result) == set(b.result) and set(a.result["metrics"]) == set(b.result["metrics"])
    assert {k: len(v) for k, v in a.history.items()} == {k: len(v) for k, v in b.history.items()}
    assert [sorted(r) for r in a.probes] == [sorted(r) for r in b.probes]
    assert [(r.get("epoch"), r.get("step"), r.get("layer")) for r in a.probes] == [
        (r.get("epoch"), r.get("step"), r.get("layer")) for r in b.probes]


def _paths(s: spec.StudySpec, trials: list[tuple[dict, int]], first: str | None, second: str):
    one = pack.train(s, _members(s, trials), path=first)
    keras.backend.clear_session()
    return one, pack.train(s, _members(s, trials), path=second)


def test_scanned_steps_train_as_keras_own_steps():
    """Every training path gives the same records: a chunk's steps scanned in one compiled program
    (path "scan") and Keras' own train function (path "keras", one compiled step per batch), with
    probes sampled on both."""
    from ablation.base import backend

    # JAX scans a last, smaller batch as a chunk of its own; TensorFlow trains such an epoch Keras' way
    batch = 50 if backend.current().SCAN_NEEDS_FULL_BATCHES else 70  # 12 full steps; 8 and a batch of 40
    s = spec.loads(STUDY.replace("batch_size = 50", f"batch_size = {batch}").replace(
        'seeds = [0, 1]', 'seeds = [0, 1]\nprobes = ["activations"]'))
    # dropout: own masks on both paths (JAX; TensorFlow trains dropout nets without XLA on a CPU, so unscanned)
    dropout = "0.3" if keras.backend.backend() == "jax" else "0.0"
    trials = [({"activation": "relu", "dropout": dropout}, 0), ({"activation": "tanh", "dropout": "0.0"}, 1)]
    members = _members(s, trials)
    scanned_pack = pack.Pack(s, members)
    assert scanned_pack.batches.chunk is not None and len(scanned_pack.batches) < scanned_pack.steps
    keras.backend.clear_session()
    scanned, stepped = _paths(s, trials, None, "keras")
    for a, b in zip(scanned, stepped):
        _same(a, b, rel=1e-5)
        _same_shape(a, b)
        assert a.probes and a.result["steps_run"] == b.result["steps_run"] == 4 * -(-600 // batch)
        assert (a.result["train_path"], b.result["train_path"]) == ("scan", "keras")
        assert b.result["train_path_reason"] == "forced: keras" and "scanned" in a.result["train_path_reason"]


def test_a_convolutional_pack_trains_alike_on_both_paths():
    """The rule sends conv nets on a CPU to Keras' loop; forced to scan, they give the same records."""
    s = spec.loads(STUDY.replace('name = "mlp"\nhidden = [24, 24]', 'name = "cnn"\nfilters = [4]\ndense = [16]'
                                 '\nkernel_size = 3').replace('dropout = [0.0, 0.3]', 'pooling = ["max"]').replace(
        "epochs = 4", "epochs = 2"))
    trials = [({"activation": "relu", "pooling": "max"}, seed) for seed in (0, 1)]
    if keras.backend.backend() == "tensorflow":  # on a CPU without XLA (training.use_xla): nothing to scan
        (ruled,) = pack.train(s, _members(s, trials[:1]))
        assert (ruled.result["train_path"], ruled.result["xla"]) == ("keras", False)
        with pytest.raises(ValueError, match="'force'"):
            pack.Pack(s, _members(s, trials[:1]), path="scan")
        return
    ruled, scanned = _paths(s, trials, None, "scan")
    for a, b in zip(ruled, scanned):
        _same(a, b, rel=1e-4)
        _same_shape(a, b)
        assert (a.result["train_path"], b.result["train_path"]) == ("keras", "scan")
        assert "convolution" in a.result["train_path_reason"] or not a.result["xla"]


def test_xla_off_trains_alike():
    """jit_compile = false (under TensorFlow: Keras' loop without XLA; JAX always compiles) gives the
    records of the XLA path."""
    s = spec.loads(STUDY.replace("epochs = 4", "epochs = 2"))
    off = spec.loads(STUDY.replace("epochs = 4", "epochs = 2").replace("learning_rate = 0.01",
                                                                       "learning_rate = 0.01\njit_compile = false"))
    trials = [({"activation": "tanh", "dropout": "0.0"}, 0)]
    (a,) = pack.train(s, _members(s, trials))
    keras.backend.clear_session()
    (b,) = pack.train(off, _members(off, trials))
    _same(a, b, rel=1e-4)
    _same_shape(a, b)
    assert a.result["xla"] and b.result["xla"] == (keras.backend.backend() == "jax")
    assert b.result["train_path"] == ("scan" if b.result["xla"] else "keras")


def test_a_convolutional_pack_takes_the_per_step_loop_and_trains_as_alone():
    """training.scan_suits: conv members run Keras' own loop (no scanned chunks on a CPU), and a pack of
    them still trains each member exactly as alone."""
    s = spec.loads(STUDY.replace('name = "mlp"\nhidden = [24, 24]', 'name = "cnn"\nfilters = [4]\ndense = [16]'
                                 '\nkernel_size = 3').replace('dropout = [0.0, 0.3]', 'pooling = ["max"]'))
    trials = [({"activation": "relu", "pooling": "max"}, seed) for seed in (0, 1)]
    alone, packed = _alone_and_packed(s, trials)
    for a, b in zip(alone, packed):
        _same(a, b)
        assert b.result["pack_size"] == 2
    assert not training.scan_suits([m.model for m in _members(s, trials[:1])])


def test_members_of_one_pack_must_share_the_recipe():
    s = spec.loads(STUDY.replace("[grid]", "[grid]\nlearning_rate = [0.01, 0.1]"))
    members = _members(s, [({"activation": "relu", "dropout": "0.0", "learning_rate": lr}, 0)
                           for lr in ("0.01", "0.1")])
    with pytest.raises(ValueError, match="one training recipe"):
        pack.Pack(s, members)


def test_recipe_axes_are_declared_first_so_packable_trials_come_together():
    s = spec.loads(STUDY.replace("[grid]", "[grid]\nlearning_rate = [0.01, 0.1]").replace(
        "train_size = 600", ""))
    assert [a.name for a in declaration_order(s)] == ["learning_rate", "activation", "dropout"]


def test_pack_limits():
    s = spec.loads(STUDY)
    cfg = s.resolve({"activation": "relu", "dropout": "0.0"}, 0)
    assert pack.allowed_limit(s, cfg) == pack.MAX_PACK
    assert pack.default_limit(s, cfg, params=1_000) == pack.MAX_PACK
    assert pack.default_limit(s, cfg, params=1_000_000) == 1            # big nets train alone on a CPU
    params = int(pack.CPU_STEP_FLOPS / training.step_flops(1, cfg.train.batch_size) / 3)
    assert pack.default_limit(s, cfg, params=params) == 3
    for edit in (("seeds = [0, 1]", 'seeds = [0, 1]\nprobes = ["timing"]'),
                 ("seeds = [0, 1]", "seeds = [0, 1]\npack = false"),
                 ("learning_rate = 0.01", 'learning_rate = 0.01\nprecision = "mixed_float16"')):
        other = spec.loads(STUDY.replace(*edit))
        assert pack.allowed_limit(other, other.resolve({"activation": "relu", "dropout": "0.0"}, 0)) == 1, edit


def test_a_pack_that_raises_records_every_member_as_failed(monkeypatch):
    s = spec.loads(STUDY)
    members = _members(s, [({"activation": "relu", "dropout": "0.0"}, seed) for seed in (0, 1)])

    def boom(self, phases=None):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(pack.Pack, "fit", boom)
    records = pack.train(s, members)
    assert [r.status for r in records] == ["failed", "failed"]
    assert all("RuntimeError: out of memory" in r.result["reason"] and "Traceback" in r.result["traceback"]
               for r in records)
    assert all(math.isfinite(r.result["wall_time_s"]) for r in records)
