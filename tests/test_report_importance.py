"""Tests of ablation.report.importance: the ranked bar chart of factor importance and its section data."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from ablation import stats
from ablation.report import importance

from test_stats_importance import _grid, _shift_a  # noqa: E402  (the synthetic grids with known effects)


def test_bars_are_ranked_shares_with_their_intervals():
    table = stats.factor_importance(_grid({"a": ["off", "on"], "b": ["x", "y", "z"]}, seeds=3, effect=_shift_a,
                                          noise=1.0), ["a", "b"], n_boot=300).table
    ax = importance.importance_bars(table)
    terms = table[table["kind"] != "residual"].sort_values("eta_sq", ascending=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(terms["term"])    # residual not drawn
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx(list(terms["eta_sq"]))
    assert len(ax.containers) == 2 and "interval" in ax.get_xlabel()               # the bars, then the whiskers
    plt.close(ax.figure)


def test_one_seed_draws_shares_without_whiskers():
    table = stats.factor_importance(_grid({"a": ["off", "on"], "b": [0, 1]}, seeds=1, effect=_shift_a),
                                    ["a", "b"]).table
    ax = importance.importance_bars(table)
    assert len(ax.containers) == 1 and "interval" not in ax.get_xlabel()
    plt.close(ax.figure)


def test_bars_need_a_table():
    with pytest.raises(ValueError, match=r"expected a non-empty frame for importance_bars\(\). Received: 0 rows"):
        importance.importance_bars(pd.DataFrame(columns=list(stats.importance.COLUMNS)))
