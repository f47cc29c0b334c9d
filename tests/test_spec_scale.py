"""ablation.spec.scale: the scale line of a verdict row, and SCIENCE.md's scale rule (a width-, rate- or
length-dependent claim gets a verdict only at the paper's widths or p·n >= 256, its data set, 100+ epochs)."""

from __future__ import annotations

import pytest

from ablation import spec, stats
from ablation.spec import scale

STUDY = """
[study]
name = "s"
seeds = [0, 1, 2, 3, 4]

[[claims]]
id = "D"
statement = "dropout helps"
metric = "test_error"
compare = { dropout = 0.5 }
against = { dropout = 0.0 }
expect = "lower"
paper_scale = true

[data]
name = "mnist"
validation_size = 10000

[model]
name = "mlp"
hidden = [1024, 1024]

[train]
epochs = 200

[grid]
dropout = [0.0, 0.5]

[profiles.narrow]
model = { hidden = [128, 128] }
train = { epochs = 20 }

[profiles.wide_pn]
model = { hidden = [600, 600] }

[profiles.short]
train = { epochs = 50 }

[profiles.full]
train = { epochs = 200 }
"""


def _departs(s: spec.StudySpec, selection: dict) -> str | None:
    """The arm's departures from the paper's scale, as a page joins them; None when it meets the rule."""
    return "; ".join(scale.departure_reasons(s, selection, scale.paper_spec(s))) or None


def _gap(profile: str, selection: dict) -> str | None:
    return _departs(spec.loads(STUDY, profile=profile), selection)


def test_a_shrunk_stand_in_departs_and_says_why():
    gap = _gap("narrow", {"dropout": "0.5"})
    assert gap == "2 x 128 at p_keep 0.5 (p\u00b7n = 64 < 256) where the paper has 2 x 1024; 20 epochs (< 100)"
    assert _gap("narrow", {"dropout": "0.0"}).startswith("2 x 128 at p_keep 1 (p\u00b7n = 128 < 256)")


def test_a_dropconnect_rate_counts_as_the_keep_probability():
    """A narrow DropConnect arm at the paper's rate departs as a narrow dropout arm does (Wan et al.'s 2 x 800
    at rate 0.5 is 400 units' worth; 2 x 256 at 0.5 is 128)."""
    text = STUDY.replace("[grid]\ndropout = [0.0, 0.5]", "[grid]\ndropconnect = [0.0, 0.5]") \
        .replace("compare = { dropout = 0.5 }\nagainst = { dropout = 0.0 }",
                 "compare = { dropconnect = 0.5 }\nagainst = { dropconnect = 0.0 }")
    s = spec.loads(text, profile="wide_pn")
    assert _departs(s, {"dropconnect": "0.5"}) is None  # 0.5 x 600 = 300
    narrow = spec.loads(text.replace("hidden = [600, 600]", "hidden = [256, 256]"), profile="wide_pn")
    assert _departs(narrow, {"dropconnect": "0.5"}) == \
        "2 x 256 at p_keep 0.5 (p\u00b7n = 128 < 256) where the paper has 2 x 1024"
    assert _departs(narrow, {"dropconnect": "0.0"}) is None  # 1 x 256 = 256


def test_p_times_n_of_256_or_more_and_100_epochs_meet_the_rule():
    assert _gap("wide_pn", {"dropout": "0.5"}) is None          # 0.5 x 600 = 300 units' worth
    assert _gap("short", {"dropout": "0.5"}) == "50 epochs (< 100)"
    assert _gap("full", {"dropout": "0.5"}) is None              # the paper's own profile


def test_a_paper_scale_claim_off_scale_needs_the_full_profile():
    import pandas as pd

    rows = [{"trial_id": f"{s}{d}", "status": "completed", "seed": s, "point": f"dropout={d}", "dropout": d,
             "test_error": 0.02 + 0.01 * d + 0.001 * s, "train_error": 0.01, "num_classes": 10}
            for s in range(5) for d in (0.0, 0.5)]
    s = spec.loads(STUDY, profile="narrow")
    (v,) = stats.claim_verdicts(s.claims, pd.DataFrame(rows), axes=["dropout"], scale_gaps={"D": "2 x 128 ..."})
    assert v["verdict"] == v["verdict_holm"] == "needs the full profile" and "2 x 128" in v["reason"]
    assert v["n"] == 5 and abs(v["estimate"] - 0.005) < 1e-12  # the numbers are still shown
    (plain,) = stats.claim_verdicts(s.claims, pd.DataFrame(rows), axes=["dropout"])
    assert plain["verdict"] == "not supported"


def test_a_profile_drops_a_recipe_by_setting_it_to_false():
    text = STUDY.replace("[grid]\ndropout = [0.0, 0.5]", "[grid.config]\nplain = {}\nbig = { hidden = [4096] }") \
        .replace("compare = { dropout = 0.5 }\nagainst = { dropout = 0.0 }", 'compare = { config = "big" }\n'
                 'against = { config = "plain" }') + "\n[profiles.small.grid.config]\nbig = false\n"
    small = spec.loads(text, profile="small")
    assert small.axis("config").labels == ("plain",) and small.n_trials == 5
    gap = _departs(small, {"config": "big"})
    assert gap == "this profile does not run config=big (the full profile does)"
    with pytest.raises(spec.SpecError, match=r"^profiles\.small\.grid\.config: every recipe is set to false"):
        spec.loads(text + "plain = false\n", profile="small")


def test_the_bundled_long_profile_runs_the_dropout_claims_at_paper_scale():
    s = spec.load(spec.find_study("dropout_mnist"), profile="long")
    assert s.train.epochs >= scale.MIN_EPOCHS and len(s.seeds) >= 5 and s.data.name == "mnist"
    for c in s.claims:
        sides = [{**c.compare, **c.where}] + ([{**c.against, **c.where}] if c.against is not None else [])
        gaps = [g for g in (_departs(s, sel) for sel in sides) if g]
        if c.id in ("C1-2x4096", "C1-2x8192"):  # GPU only: the page says "needs the full profile"
            assert gaps and all("does not run" in g for g in gaps)
        else:
            assert gaps == [], (c.id, gaps)


def test_a_claim_s_scale_line_names_each_departure_once():
    """Both arms of a claim train 20 epochs: the page's reason says so once, with each arm's width."""
    from ablation.report import page

    s = spec.loads(STUDY, profile="narrow")
    gap = page.scale_gaps(s.claims, s, scale.paper_spec(s))["D"]
    assert gap == ("2 x 128 at p_keep 0.5 (p\u00b7n = 64 < 256) where the paper has 2 x 1024; 20 epochs (< 100); "
                   "2 x 128 at p_keep 1 (p\u00b7n = 128 < 256) where the paper has 2 x 1024")


def test_every_grid_point_of_an_arm_is_checked_not_only_its_first():
    """C2's arms leave the architecture free: a narrow net after a wide one still departs, and the scale line
    names every net the arm ran."""
    from ablation.spec import claims

    text = STUDY.replace("[grid]\ndropout = [0.0, 0.5]", "[grid]\nhidden = [[1024, 1024], [1024, 1024, 1024]]\n"
                         "dropout = [0.0, 0.5]")
    assert _departs(spec.loads(text, profile="full"), {"dropout": "0.5"}) is None
    mixed = spec.loads(text.replace("[profiles.full]", "[profiles.mixed]\ngrid = { hidden = [[1024, 1024], "
                                    "[128, 128]] }\n\n[profiles.full]"), profile="mixed")
    assert _departs(mixed, {"dropout": "0.5"}) == \
        "2 x 128 at p_keep 0.5 (p\u00b7n = 64 < 256) where the paper has nets of 1024 units or more"
    line = scale.scale_line(mixed, claims.scale_selectors(mixed.claims[0], {"dropout": "0.5"}), 5,
                            scale.paper_spec(mixed))
    assert line == ("MNIST (50,000 train), 2 x 1024 and 2 x 128, 200 epochs, 5 seeds; paper scale: MNIST "
                    "(50,000 train), 2 x 1024 and 3 x 1024 (8x wider), 200 epochs, 5 seeds")


def test_an_interaction_claim_s_scale_line_gives_its_own_training_sizes():
    """C3-peak compares the effect at 5,000 examples with the effect at 1,000: its line names those sizes, not
    the grid's first (100)."""
    from ablation.spec import claims

    s = spec.load(spec.find_study("dropout_train_size"), profile="cpu")
    (claim,) = [c for c in s.claims if c.id == "C3-peak"]
    line = scale.scale_line(s, claims.scale_selectors(claim, claim.compare), 10, scale.paper_spec(s))
    assert line.startswith("MNIST-1D (1,000 and 5,000 train), 3 x 256, 300 epochs, 10 seeds; paper scale: MNIST "
                           "(1,000 and 5,000 train)"), line
