"""The scale a study runs at, in words, generated from the spec (never typed by hand).

Bundled studies hold the papers' setup in their ``full`` profile and a smaller one in their CPU
profile, so a verdict row can say at once what was run and how far it is from the paper:
``MNIST-1D (3,500 train), 3 x 64, 20 epochs, 5 seeds; paper scale: MNIST (50,000 train),
3 x 1024 (16x wider), 500 epochs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ablation.spec.errors import SpecError
from ablation.spec.schema import StudySpec, TrialConfig

PAPER_PROFILE = "full"
MIN_PN = 256        # Srivastava et al. 2014, section 7.3: keep probability x width held at 256 when n varies
MIN_EPOCHS = 100    # the least training a claim whose effect grows with training length gets at a smaller scale


def paper_spec(spec: StudySpec) -> StudySpec | None:
    """The study at paper scale (its ``full`` profile), or None when it has none or this is it."""
    if spec.profile == PAPER_PROFILE or not spec.source_text:
        return None
    from ablation.spec.parse import loads

    try:
        return loads(spec.source_text, profile=PAPER_PROFILE, base_dir=spec.base_dir)
    except SpecError:
        return None


def representative(spec: StudySpec, selection: Mapping[str, str]) -> TrialConfig | None:
    """The configuration of the first grid point that matches ``selection`` (axis -> label)."""
    for point in spec.points():
        if all(point.get(axis) == lab for axis, lab in selection.items()):
            return spec.resolve(point, spec.seeds[0])
    return None


def widths(cfg: TrialConfig) -> tuple[int, ...] | None:
    """The hidden widths of a trial's model (an MLP's ``hidden``; a CNN's filters then dense widths);
    None for a user's function (its arguments say nothing the package can read)."""
    from ablation import zoo

    if cfg.factory is not None:
        return None
    args = {**zoo.variant_args(cfg.model_name), **cfg.model_args}
    if "hidden" in args:
        return tuple(int(w) for w in args["hidden"])
    return tuple(int(w) for w in (*args.get("filters", ()), *args.get("dense", ())))


def _widths_text(w: tuple[int, ...] | None) -> str:
    if w is None:
        return "your model"
    if not w:
        return "no hidden layers"
    return f"{len(w)} x {w[0]}" if len(set(w)) == 1 else "-".join(map(str, w))


def describe(cfg: TrialConfig) -> dict[str, Any]:
    """Data set, training examples, widths and epochs of one trial configuration."""
    from ablation import data

    name = data.DISPLAY_NAMES.get(cfg.data_name, cfg.data.label)
    known = data.train_examples(cfg.data_name, **cfg.data_options)
    n = cfg.train_size or (known - cfg.validation_size if known is not None else None)
    return {"data": name, "train_examples": None if n is None else int(n), "widths": widths(cfg),
            "epochs": cfg.train.epochs}


def _train_text(n: int | None) -> str:
    return "all train" if n is None else f"{n:,} train"


def setup_text(cfg: TrialConfig, seeds: int | None = None) -> str:
    """``MNIST-1D (3,500 train), 3 x 64, 20 epochs[, 5 seeds]``."""
    d = describe(cfg)
    text = f"{d['data']} ({_train_text(d['train_examples'])}), {_widths_text(d['widths'])}, {d['epochs']} epochs"
    return text + (f", {seeds} seed{'s' if seeds != 1 else ''}" if seeds is not None else "")


def departure_reasons(spec: StudySpec, selection: Mapping[str, str], paper: StudySpec | None) -> list[str]:
    """Each way an arm departs from the scale where a width-, rate- or length-dependent effect can be tested.

    SCIENCE.md's scale rule: such an effect is tested at the paper's widths (or at keep probability x
    width >= ``MIN_PN``, where the paper itself varies n; a DropConnect arm's keep probability is that of
    its weights, as Wan et al. 2013 compare the two at the same rate and widths), on the paper's data set,
    with at least ``MIN_EPOCHS`` epochs (or the paper's budget, if smaller). Empty when the study has no
    paper profile to compare with, or the arm meets the rule.
    """
    cfg = representative(spec, selection)
    if paper is None:
        return []
    paper_cfg = representative(paper, selection)
    if cfg is None:  # a profile that leaves the arm out (a recipe set to false)
        return [f"this profile does not run {_selection_text(selection)} (the {PAPER_PROFILE} profile does)"] \
            if paper_cfg is not None else []
    if paper_cfg is None:  # the arm is not a grid point of the paper's profile: held against its narrowest net
        nets = [(min(w), w) for w in (widths(paper.resolve(p, paper.seeds[0])) for p in paper.points()) if w]
        paper_cfg, theirs_text = representative(paper, {}), (f"nets of {min(nets)[0]} units or more" if nets else "")
        theirs = (min(nets)[1] if nets else None)
    else:
        theirs = widths(paper_cfg)
        theirs_text = _widths_text(theirs)
    reasons = []
    mine = widths(cfg)
    if mine and theirs and min(mine) < min(theirs):  # a DropConnect rate counts as a dropout rate (Wan 2013)
        keep = 1.0 - max(float(cfg.model_args.get(k, 0.0) or 0.0) for k in ("dropout", "dropconnect"))
        if keep * min(mine) < MIN_PN:
            reasons.append(f"{_widths_text(mine)} at p_keep {keep:g} (p\u00b7n = {keep * min(mine):g} < {MIN_PN}) "
                           f"where the paper has {theirs_text}")
    least = min(MIN_EPOCHS, paper_cfg.train.epochs)
    if cfg.train.epochs < least:
        reasons.append(f"{cfg.train.epochs} epochs (< {least})")
    ours, papers = describe(cfg)["data"], describe(paper_cfg)["data"]
    if ours != papers:
        reasons.append(f"{ours} where the paper uses {papers}")
    return reasons


def _selection_text(selection: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in selection.items())


def scale_line(spec: StudySpec, selection: Mapping[str, str], seeds: int | None = None,
               paper: StudySpec | None = None) -> str:
    """What an arm of a claim ran at, and the same arm at paper scale when the study has a ``full`` profile."""
    cfg = representative(spec, selection)
    if cfg is None:
        return ""
    text = setup_text(cfg, seeds)
    paper_cfg = representative(paper, selection) if paper is not None else None
    if paper_cfg is None:
        return text
    mine, theirs = widths(cfg), widths(paper_cfg)
    ratio = ""
    if mine and theirs and theirs[0] != mine[0]:
        factor = theirs[0] / mine[0]
        ratio = f" ({factor:g}x wider)" if factor > 1 else f" ({1 / factor:g}x narrower)"
    d = describe(paper_cfg)
    paper_text = (f"{d['data']} ({_train_text(d['train_examples'])}), {_widths_text(d['widths'])}{ratio}, "
                  f"{d['epochs']} epochs, {len(paper.seeds)} seeds")
    return f"{text}; paper scale: {paper_text}"
