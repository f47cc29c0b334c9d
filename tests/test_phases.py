"""ablation.base.phases: the phases of a pack, the compile estimate, and the sums over packs."""

import time

import pytest

from ablation.base import phases


def test_timed_adds_the_blocks_time_and_refuses_a_phase_it_does_not_know():
    p = phases.Phases()
    with p.timed("build"):
        time.sleep(0.02)
    p.add("train", 1.5)
    p.add("train", -3.0)  # a negative time (clock noise) adds nothing
    out = p.as_result()
    assert set(out) == {f"{name}_s" for name in phases.PACK_PHASES}
    assert 0.02 <= out["build_s"] < 1.0 and out["train_s"] == 1.5 and out["data_s"] == 0.0
    with pytest.raises(ValueError, match=r"expected one of data, build, .*Received: name='training'$"):
        p.add("training", 1.0)


def test_compile_is_the_first_epoch_beyond_the_median_of_the_others_and_train_the_rest():
    split = phases.split_fit(10.0, [4.0, 1.0, 1.2, 0.9], evaluate_s=1.0, probes_s=0.5)
    assert split == pytest.approx({"compile": 3.0, "train": 5.5})
    assert phases.split_fit(2.0, [2.0], 0.0, 0.0) == {"compile": 0.0, "train": 2.0}  # one epoch: no estimate
    assert phases.split_fit(1.0, [0.5, 0.9], 0.0, 0.0)["compile"] == 0.0  # a faster first epoch: none


def test_total_counts_each_pack_once_and_keeps_a_workers_start():
    a = {"build_s": 1.0, "train_s": 2.0, "worker_start_s": 3.0}
    results = [{"trial_id": "00", "pack_id": "00", "phases": a}, {"trial_id": "01", "pack_id": "00", "phases": a},
               {"trial_id": "02", "pack_id": "02", "phases": {"build_s": 0.5, "train_s": 1.0}},
               {"trial_id": "03", "status": "failed"}]  # no phases: a run from before them
    assert phases.total(results) == {"build_s": 1.5, "train_s": 3.0, "worker_start_s": 3.0}
    assert phases.total([]) == {}
