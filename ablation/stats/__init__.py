"""Statistics of an ablation run: confidence intervals, paired effects, claim verdicts, curve measures.

Pure functions over the long-form frames of :mod:`ablation.records` (NumPy, pandas, SciPy; no
plotting, no disk). ``stats`` owns every interval and every test; the report only shows them.

Modules: ``intervals`` (confidence intervals), ``frames`` (selecting, matching and pairing rows),
``tables`` (per-point summaries, per-axis effects, evaluation columns), ``claims`` (verdicts),
``curves`` (epochs to reach a value).
"""

from __future__ import annotations

from ablation.stats.claims import MIN_PAIRS, claim_verdict, decide
from ablation.stats.curves import epochs_to_reach, first_epoch_below
from ablation.stats.frames import axes_from_points, axis_label, matches, select
from ablation.stats.intervals import LEVEL, N_BOOT, bootstrap_ci, effect_stat
from ablation.stats.tables import evaluation_metrics, paired_deltas, summarize

__all__ = [
    "LEVEL", "N_BOOT", "MIN_PAIRS", "bootstrap_ci", "effect_stat", "summarize", "paired_deltas",
    "evaluation_metrics", "claim_verdict", "decide", "first_epoch_below", "epochs_to_reach", "matches",
    "select", "axis_label", "axes_from_points",
]
