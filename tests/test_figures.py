"""Tests of ablation.report.figures on hand-made frames in the records schema (docs/internals.md §4)."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ablation.report import figures

ACTS, DROPS, SEEDS, EPOCHS = ("relu", "sigmoid"), (0.0, 0.5), (0, 1, 2), (1, 2, 3)


def _error(act: str, p: float, seed: int) -> float:
    return 0.30 + 0.10 * (act == "sigmoid") - 0.04 * p + 0.01 * seed


def _records(probes: tuple[str, ...] = (), mc: bool = False, acts=ACTS, drops=DROPS, curves: bool = True):
    trials, curve_rows, probe_rows, evals = [], [], [], []
    for act in acts:
        for p in drops:
            for seed in SEEDS:
                key = {"trial_id": f"{len(trials):02d}", "status": "completed", "seed": seed,
                       "point": f"activation={act}, dropout={p}", "activation": act, "dropout": p}
                err = _error(act, p, seed)
                trials.append({**key, "train_size": 500, "test_error": err, "time_per_epoch_s": 0.1 + 0.01 * seed})
                curve_rows += [{**key, "epoch": e, "step": 10 * e, "split": split, "metric": "error",
                                "value": err + 0.3 / e + 0.02 * (split == "val")}
                               for e in EPOCHS for split in ("train", "val")]
                for probe, stat, layers in (("gradients", "kernel_grad_norm", ("dense_1", "dense_2")),
                                            ("activations", "sparsity", ("act_1", "act_2")),
                                            ("weights", "abs_q50", ("dense_1",)),
                                            ("covariate_shift", "p50", ("act_2/unit_0",)),
                                            ("speed", "train_error", ("model",))):
                    if probe in probes:
                        probe_rows += [{**key, "probe": probe, "layer": layer, "depth": d + 1, "step": 10 * e,
                                        "epoch": e, "stat": stat, "value": 0.1 * (d + 1) + 0.01 * e}
                                       for d, layer in enumerate(layers) for e in (0, *EPOCHS)]
                if mc:
                    evals += [{**key, "mode": "mc_dropout", "k": k, "metric": "test_error", "value": err + 0.01 / k}
                              for k in (1, 10, 100)]
    return SimpleNamespace(trials=pd.DataFrame(trials), curves=pd.DataFrame(curve_rows if curves else []),
                           probes=pd.DataFrame(probe_rows), evaluations=pd.DataFrame(evals),
                           axes=("activation", "dropout"), spec=None)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_learning_curves_one_line_per_hue_level_per_facet_at_the_seed_means():
    rec = _records()
    data = rec.curves[rec.curves.dropout == 0.0]
    g = figures.learning_curves(data, hue="activation", n_boot=200)
    assert g.axes.shape == (1, 2)                                      # split = train, val
    for ax, split in zip(g.axes.flat, ("train", "val")):
        lines = ax.get_lines()
        assert len(lines) == 2
        relu = lines[0]
        expected = [np.mean([_error("relu", 0.0, s) for s in SEEDS]) + 0.3 / e + 0.02 * (split == "val")
                    for e in EPOCHS]
        assert list(relu.get_xdata()) == list(EPOCHS)
        assert relu.get_ydata() == pytest.approx(expected)
        assert len(ax.collections) == 2                                # one CI band per line


def test_final_metric_categorical_x_and_numeric_log_x():
    summary = pd.DataFrame({"activation": ["relu", "relu", "tanh", "tanh"], "dropout": [0.0, 0.5] * 2,
                            "mean": [0.3, 0.25, 0.4, 0.38], "ci_lo": [0.28, 0.2, 0.35, 0.3],
                            "ci_hi": [0.32, 0.3, 0.45, 0.4]})
    g = figures.final_metric(summary, x="activation", hue="dropout", orders={"activation": ["tanh", "relu"]})
    ax = g.ax
    assert len(ax.containers) == 2                                     # one error-bar series per dropout
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tanh", "relu"]
    first = ax.containers[0].lines[0]
    assert list(first.get_xdata()) == [0, 1] and list(first.get_ydata()) == [0.3, 0.4][::-1]
    sizes = pd.DataFrame({"train_size": [100, 1000, 10000], "mean": [0.5, 0.3, 0.2], "ci_lo": [0.4, 0.25, 0.15],
                          "ci_hi": [0.6, 0.35, 0.25]})
    g = figures.final_metric(sizes, x="train_size")
    assert g.ax.get_xscale() == "log"
    assert list(g.ax.containers[0].lines[0].get_xdata()) == [100.0, 1000.0, 10000.0]


def test_gradient_norms_log_scale_and_depth_facets():
    rec = _records(probes=("gradients",))
    rows = rec.probes.assign(when=np.where(rec.probes.epoch == 0, "at init", "after training"))
    g = figures.gradient_norms(rows, hue="activation", orders={"when": ["at init", "after training"]}, n_boot=200)
    assert g.axes.shape == (1, 2)
    assert all(ax.get_yscale() == "log" for ax in g.axes.flat)
    assert [len(ax.get_lines()) for ax in g.axes.flat] == [2, 2]
    assert list(g.axes.flat[0].get_lines()[0].get_xdata()) == [1, 2]


def test_mc_dropout_draws_reference_line_per_hue_level():
    rec = _records(mc=True)
    ref = pd.DataFrame({"activation": ["relu", "sigmoid"], "mean": [0.3, 0.4], "ci_lo": [0.29, 0.39],
                        "ci_hi": [0.31, 0.41]})
    g = figures.mc_dropout(rec.evaluations, reference=ref, hue="activation", n_boot=200)
    lines = g.ax.get_lines()
    assert len(lines) == 4                                             # 2 MC curves + 2 dashed references
    assert sorted(line.get_ydata()[0] for line in lines if line.get_linestyle() == "--") == [0.3, 0.4]
    assert g.ax.get_xscale() == "log"


def test_horizontal_errorbars_keep_the_given_order():
    summary = pd.DataFrame({"point": ["b", "a"], "mean": [2.0, 1.0], "ci_lo": [1.5, 0.5], "ci_hi": [2.5, 1.5]})
    ax = figures.horizontal_errorbars(summary, order=["a", "b"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert list(ax.containers[0].lines[0].get_xdata()) == [1.0, 2.0]


def test_figure_functions_reject_empty_or_incomplete_data():
    with pytest.raises(ValueError, match="argument 'data'.*non-empty frame for band_lines"):
        figures.band_lines(pd.DataFrame(columns=["epoch", "value"]), x="epoch")
    with pytest.raises(ValueError, match=r"argument 'data'.*\['ci_lo'\]"):
        figures.final_metric(pd.DataFrame({"x": [1], "mean": [1.0], "ci_hi": [1.0]}), x="x")


def test_plan_picks_only_what_was_recorded():
    everything = _records(probes=("gradients", "activations", "weights", "covariate_shift", "speed"), mc=True)
    keys = [f.key for f in figures.plan(everything, n_boot=100)]
    assert keys == ["learning_curves", "interaction", "gradient_norms", "unit_fractions", "covariate_shift",
                    "weight_quantiles", "epoch_time", "speed", "mc_dropout"]
    plain = figures.plan(_records(curves=False), n_boot=100)
    assert [f.key for f in plain] == ["interaction", "epoch_time"]
    assert plain[0].section == "effects" and "dropout depends on activation" in plain[0].caption
    one_axis = figures.plan(_records(acts=("relu",)), n_boot=100)
    assert [f.key for f in one_axis] == ["learning_curves", "metric_vs_axis", "epoch_time"]


def test_plan_leaves_out_probes_without_values_and_failed_trials():
    rec = _records(probes=("gradients", "speed"))
    rec.probes.loc[rec.probes.probe == "speed", "value"] = np.nan       # e.g. saturation of a ReLU net
    rec.trials["status"] = "failed"
    rec.curves["status"] = "failed"
    rec.probes["status"] = "failed"
    assert [f.key for f in figures.plan(rec, n_boot=100)] == []


def test_plan_figures_draw_and_encode_as_png():
    rec = _records(probes=("gradients", "covariate_shift"), mc=True)
    rec.spec = SimpleNamespace(axis_names=("activation", "dropout"),
                               axis=lambda name: SimpleNamespace(labels={"activation": ("sigmoid", "relu"),
                                                                         "dropout": ("0.5", "0.0")}[name]))
    plan = {f.key: f for f in figures.plan(rec, n_boot=100)}
    g = plan["learning_curves"].draw()
    assert g.hue_names == ["sigmoid", "relu"] and g.row_names == [0.5, 0.0]   # the study file's order
    uri = figures.to_data_uri(g)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == []                                       # closed after encoding
    for key in ("gradient_norms", "covariate_shift", "mc_dropout", "epoch_time", "interaction"):
        assert figures.to_data_uri(plan[key].draw()).startswith("data:image/png;base64,")


def test_covariate_shift_facets_by_axis_and_no_titles_overlap():
    """Three varying axes: columns by the first, rows by the other two (one short line per axis, at the
    right margin), never one long grid-point label per facet; no two titles overlap when drawn."""
    base = _records(probes=("covariate_shift",))
    frames = {}
    for name in ("trials", "probes"):
        parts = []
        for i, lr in enumerate((0.1, 1.0)):
            f = getattr(base, name).copy()
            f["trial_id"] = f["trial_id"] + f"-{i}"
            f["learning_rate"] = lr
            f["point"] = f["point"] + f", learning_rate={lr}"
            parts.append(f)
        frames[name] = pd.concat(parts, ignore_index=True)
    rec = SimpleNamespace(trials=frames["trials"], probes=frames["probes"], curves=pd.DataFrame(),
                          evaluations=pd.DataFrame(), axes=("activation", "dropout", "learning_rate"), spec=None)
    plan = {f.key: f for f in figures.plan(rec, n_boot=100)}
    g = plan["covariate_shift"].draw()
    assert g.col_names == ["relu", "sigmoid"]
    assert g.row_names == ["dropout=0.0\nlearning_rate=0.1", "dropout=0.0\nlearning_rate=1.0",
                           "dropout=0.5\nlearning_rate=0.1", "dropout=0.5\nlearning_rate=1.0"]
    g.figure.canvas.draw()
    renderer = g.figure.canvas.get_renderer()
    titles = [t for ax in g.axes.flat for t in [ax.title, *ax.texts] if t.get_text()]
    assert {t.get_text() for t in titles} >= {"activation = relu", "activation = sigmoid", *g.row_names}
    boxes = [t.get_window_extent(renderer) for t in titles]
    overlaps = [(titles[i].get_text(), titles[j].get_text()) for i in range(len(boxes))
                for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
    assert overlaps == []


def test_the_main_figures_name_the_paper_figures_the_claims_cite():
    rec = _records()
    rec.spec = SimpleNamespace(claims=[SimpleNamespace(source="Srivastava et al. 2014, Fig. 9"),
                                       SimpleNamespace(source="Glorot & Bengio 2010"),
                                       SimpleNamespace(source="Srivastava et al. 2014, Fig. 9")],
                               axis_names=(), axis=lambda name: SimpleNamespace(labels=()))
    plan = {f.key: f for f in figures.plan(rec, n_boot=100)}
    note = "Compare with the paper figure this study's claims cite: Srivastava et al. 2014, Fig. 9."
    assert plan["learning_curves"].caption.endswith(note) and plan["interaction"].caption.endswith(note)
    assert "Compare with" not in plan["epoch_time"].caption
    assert "Compare with" not in {f.key: f for f in figures.plan(_records(), n_boot=100)}["interaction"].caption


def test_the_learning_curve_caption_names_validation_curves_only_when_there_are_some():
    from ablation.report import figures as figures_module

    for splits, expect in ((("train", "val"), True), (("train",), False)):
        rows = [{"trial_id": f"{s}", "status": "completed", "seed": s, "point": "a=1", "a": 1, "epoch": e,
                 "split": split, "metric": "error", "value": 0.5 / (e + 1)}
                for s in range(2) for e in range(3) for split in splits]

        class Rec:
            trials = pd.DataFrame([{"trial_id": f"{s}", "status": "completed", "seed": s, "point": "a=1", "a": 1,
                                    "test_error": 0.1} for s in range(2)])
            curves = pd.DataFrame(rows)
            probes = pd.DataFrame()
            evaluations = pd.DataFrame()
            axes = ["a"]

        (curves_fig,) = [f for f in figures_module.plan(Rec()) if f.key == "learning_curves"]
        assert ("validation curves" in curves_fig.caption) is expect


# --------------------------------------------------------------------------- figures a reader can trust

def _curve_rows(arms: int, seeds: int = 3, epochs: int = 4, stop: dict | None = None) -> pd.DataFrame:
    """Error curves of ``arms`` arms; ``stop[seed]`` is the last epoch that seed trained (early stopping)."""
    stop = stop or {}
    return pd.DataFrame([{"trial_id": f"{a}-{s}", "status": "completed", "seed": s, "arm": f"arm{a:02d}",
                          "epoch": e, "split": "val", "metric": "error", "value": 0.5 / e + 0.01 * a + 0.01 * s}
                         for a in range(arms) for s in range(seeds) for e in range(1, epochs + 1)
                         if e <= stop.get(s, epochs)])


def test_eight_arms_get_eight_distinct_hues_and_more_than_ten_differ_in_line_style():
    g = figures.learning_curves(_curve_rows(8), hue="arm", col=None, n_boot=100)
    colors = [tuple(line.get_color()) for line in g.ax.get_lines()]
    assert len(colors) == 8 and len(set(colors)) == 8
    assert colors == [tuple(c) for c in figures.hue_styles(8)[0]]      # the one palette, in level order
    g = figures.learning_curves(_curve_rows(12, seeds=2), hue="arm", col=None, n_boot=100)
    styles = {(tuple(line.get_color()), line.get_linestyle()) for line in g.ax.get_lines()}
    assert len(styles) == 12                                             # arms 11-12: tab10's hues, dashed


def test_a_band_stays_inside_the_metrics_range():
    rows = pd.DataFrame([{"trial_id": str(s), "status": "completed", "seed": s, "epoch": e, "value": v}
                         for s, v in enumerate((0.0, 0.0, 0.09)) for e in (1, 2)])
    raw = figures.stats.summarize(rows, ["epoch"], "value")
    assert (raw["ci_lo"] < 0).all()                                      # a t interval of errors near 0 reaches below 0
    g = figures.band_lines(rows, x="epoch", ylabel="test error", n_boot=100)
    band = g.ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.0) and band.max() == pytest.approx(raw["ci_hi"].max())
    g = figures.band_lines(rows.assign(value=rows["value"] * 10), x="epoch", ylabel="loss", n_boot=100)
    assert g.ax.collections[0].get_paths()[0].vertices[:, 1].min() == pytest.approx(0.0)
    g = figures.band_lines(rows.assign(value=1 - rows["value"]), x="epoch", ylabel="accuracy", n_boot=100)
    assert g.ax.collections[0].get_paths()[0].vertices[:, 1].max() == pytest.approx(1.0)
    summary = pd.DataFrame({"x": ["a"], "mean": [0.01], "ci_lo": [-0.02], "ci_hi": [0.04]})
    bar = figures.final_metric(summary, x="x").ax.containers[0].lines[2][0].get_segments()[0]
    assert bar[:, 1].min() == pytest.approx(0.0)
    assert figures.value_range("test_error") == (0.0, 1.0) and figures.value_range("val_loss")[0] == 0.0
    assert figures.value_range("pre-activation") == (-np.inf, np.inf)


def test_a_learning_curve_ends_where_fewer_than_half_of_its_seeds_still_train():
    # four seeds stop after epochs 10, 8, 6, 4: at least two of four train up to epoch 8
    rows = _curve_rows(1, seeds=4, epochs=10, stop={0: 10, 1: 8, 2: 6, 3: 4})
    g = figures.learning_curves(rows, hue="arm", col=None, n_boot=100)
    mean_line, cut = g.ax.get_lines()[0], g.ax.get_lines()[1]
    assert mean_line.get_xdata()[-1] == 8
    at8 = rows[rows.epoch == 8]["value"].mean()                           # the two seeds still training
    assert mean_line.get_ydata()[-1] == pytest.approx(at8)
    assert cut.get_marker() == ">" and list(cut.get_xdata()) == [8]
    assert [t.get_text() for t in g.ax.texts] == ["1/4 on to 10"]
    full = figures.learning_curves(_curve_rows(1, seeds=4, epochs=10), hue="arm", col=None, n_boot=100)
    assert full.ax.get_lines()[0].get_xdata()[-1] == 10 and len(full.ax.texts) == 0


STUDY = """
[study]
name = "widths"
seeds = [0]

[data]
name = "mnist1d"

[model]
name = "mlp"
hidden = [64]

[train]
epochs = 1

[grid.config]
wide_2x800 = { hidden = [800, 800] }
small = { hidden = [32] }

[profiles.cpu.grid.config]
wide_2x800 = { hidden = [100, 100] }

[profiles.full]
train = { epochs = 2 }
"""


def test_legends_name_the_widths_actually_run():
    from ablation import spec

    rows = _curve_rows(2).assign(config=lambda f: f["arm"].map({"arm00": "wide_2x800", "arm01": "small"}))
    trials = rows.drop_duplicates("trial_id")[["trial_id", "status", "seed", "config"]].assign(point=lambda f: f["config"])
    for profile, expect in (("cpu", ["wide_2x800 (2 x 100 at cpu)", "small"]), ("full", ["wide_2x800", "small"])):
        rec = SimpleNamespace(trials=trials, curves=rows, probes=pd.DataFrame(), evaluations=pd.DataFrame(),
                              axes=("config",), spec=spec.loads(STUDY, profile=profile))
        (curves,) = [f for f in figures.plan(rec, n_boot=100) if f.key == "learning_curves"]
        g = curves.draw()
        assert [t.get_text() for t in g.legend.texts] == expect


def test_saturation_is_drawn_per_layer_for_the_arms_that_saturate():
    rec = _records(probes=("activations",))
    sat = rec.probes.assign(stat="saturation")
    sat.loc[sat["activation"] == "relu", "value"] = np.nan               # ReLU does not saturate: no values
    rec.probes = pd.concat([rec.probes, sat], ignore_index=True)
    plan = {f.key: f for f in figures.plan(rec, n_boot=100)}
    assert list(plan).index("layer_saturation") == list(plan).index("unit_fractions") + 1
    g = plan["layer_saturation"].draw()
    assert g.col_names == ["activation=sigmoid, dropout=0.0", "activation=sigmoid, dropout=0.5"]  # no ReLU panel
    assert [t.get_text() for t in g.legend.texts] == ["1", "2"]             # one line per layer depth
    assert [list(line.get_xdata()) for line in g.axes.flat[0].get_lines()] == [[0, 1, 2, 3]] * 2
    assert "Fig. 2" in plan["layer_saturation"].caption
    assert "layer_saturation" not in {f.key for f in figures.plan(_records(probes=("activations",)), n_boot=100)}
