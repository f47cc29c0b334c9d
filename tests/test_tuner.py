"""ablation.engine.tuner: the pack limit counts parameters on the pack's first member, not a throwaway model."""

from __future__ import annotations

import numpy as np

from ablation.engine import runner
from ablation.engine.hypermodel import AblationHyperModel
from ablation.stats import records
from ablation import spec

from conftest import TINY_STUDY  # noqa: E402


def test_each_trial_is_built_once_and_records_match_a_fixed_pack_size(tmp_path, monkeypatch):
    s = runner.with_backend(spec.loads(TINY_STUDY))
    built: list[str] = []
    member = AblationHyperModel.member

    def counted(self, hp, trial_id=""):
        built.append(trial_id)
        return member(self, hp, trial_id)

    monkeypatch.setattr(AblationHyperModel, "member", counted)
    chosen = records.load(runner.run(s, out_dir=tmp_path / "a", in_process=True)).trials
    assert sorted(built) == sorted(chosen["trial_id"])  # one model per trial: counting built none of its own
    limit = int(chosen["pack_size"].max())
    assert limit > 1  # the default limit packed them
    fixed = records.load(runner.run(s, out_dir=tmp_path / "b", in_process=True, pack_size=limit)).trials
    key = ["activation", "dropout", "seed"]
    a, b = chosen.sort_values(key).reset_index(drop=True), fixed.sort_values(key).reset_index(drop=True)
    assert list(a["pack_size"]) == list(b["pack_size"])
    np.testing.assert_allclose(a["test_error"].astype(float), b["test_error"].astype(float), rtol=0, atol=1e-6)
