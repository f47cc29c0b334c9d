"""The scale a study runs at, in words, generated from the spec (never typed by hand).

Bundled studies hold the papers' setup in their ``full`` profile and a smaller one in their CPU
profile, so a verdict row can say at once what was run and how far it is from the paper:
``MNIST-1D (3,500 train), 3 x 64, 20 epochs, 5 seeds; paper scale: MNIST (50,000 train),
3 x 1024 (16x wider), 500 epochs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


Selections = Mapping[str, str] | Sequence[Mapping[str, str]]


def _as_list(selections: Selections) -> list[Mapping[str, str]]:
    return [selections] if isinstance(selections, Mapping) else list(selections)


def _matches(point: Mapping[str, str], selections: Selections) -> bool:
    """Whether a grid point (axis -> label) matches one of ``selections``."""
    return any(all(point.get(axis) == lab for axis, lab in sel.items()) for sel in _as_list(selections))


def representative(spec: StudySpec, selection: Mapping[str, str]) -> TrialConfig | None:
    """The configuration of the first grid point that matches ``selection`` (axis -> label)."""
    point = next((p for p in spec.points() if _matches(p, selection)), None)
    return None if point is None else spec.resolve(point, spec.seeds[0])


def matching(spec: StudySpec, selections: Selections) -> list[TrialConfig]:
    """The configuration of every grid point that matches ``selections`` (one selection, axis -> label, or
    several: a point matching any of them), in grid order: an arm whose claim leaves an axis free (C2 over
    its architectures) or names two of its levels (an interaction's ``at`` and ``versus``) runs them all."""
    return [spec.resolve(point, spec.seeds[0]) for point in spec.points() if _matches(point, selections)]


def _join(texts: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` (each text once, in order)."""
    texts = list(dict.fromkeys(texts))
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} and {texts[-1]}"


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


def setup_text(cfgs: TrialConfig | Sequence[TrialConfig], seeds: int | None = None, ratio: str = "") -> str:
    """``MNIST-1D (3,500 train), 3 x 64, 20 epochs[, 5 seeds]``; for several configurations each value that
    differs among them is listed: ``MNIST (50,000 train), 2 x 1024 and 3 x 1024, 100 epochs``. ``ratio``
    follows the widths (``" (8x wider)"``)."""
    ds = [describe(c) for c in ([cfgs] if isinstance(cfgs, TrialConfig) else cfgs)]
    data = _join([d["data"] for d in ds])
    train = _join([_train_text(d["train_examples"]).removesuffix(" train") for d in ds]) + " train"
    epochs = _join([str(d["epochs"]) for d in ds])
    text = f"{data} ({train}), {_join([_widths_text(d['widths']) for d in ds])}{ratio}, {epochs} epochs"
    return text + (f", {seeds} seed{'s' if seeds != 1 else ''}" if seeds is not None else "")


def departure_reasons(spec: StudySpec, selections: Selections, paper: StudySpec | None) -> list[str]:
    """Each way an arm departs from the scale where a width-, rate- or length-dependent effect can be tested.

    SCIENCE.md's scale rule: such an effect is tested at the paper's widths (or at keep probability x
    width >= ``MIN_PN``, where the paper itself varies n; a DropConnect arm's keep probability is that of
    its weights, as Wan et al. 2013 compare the two at the same rate and widths), on the paper's data set,
    with at least ``MIN_EPOCHS`` epochs (or the paper's budget, if smaller). Every grid point of the arm is
    checked (``matching``), not only its first. Empty when the study has no paper profile to compare with,
    or the arm meets the rule.
    """
    if paper is None:
        return []
    cfgs, paper_cfgs = matching(spec, selections), matching(paper, selections)
    if not cfgs:  # a profile that leaves the arm out (a recipe set to false)
        arm = "; ".join(map(_selection_text, _as_list(selections)))
        return [f"this profile does not run {arm} (the {PAPER_PROFILE} profile does)"] if paper_cfgs else []
    if not paper_cfgs:  # the arm is not a grid point of the paper's profile: held against its narrowest nets
        paper_cfgs = matching(paper, {})
    nets = sorted({w for w in (widths(c) for c in paper_cfgs) if w}, key=lambda w: (min(w), w))
    theirs = nets[0] if nets else None
    theirs_text = _widths_text(theirs) if len(nets) == 1 else f"nets of {min(theirs)} units or more" if nets else ""
    narrow: dict[float, list[tuple[tuple[int, ...], float]]] = {}
    for cfg in cfgs:
        mine = widths(cfg)
        if mine and theirs and min(mine) < min(theirs):  # a DropConnect rate counts as a dropout rate (Wan 2013)
            keep = 1.0 - max(float(cfg.model_args.get(k, 0.0) or 0.0) for k in ("dropout", "dropconnect"))
            if keep * min(mine) < MIN_PN:
                narrow.setdefault(keep, []).append((mine, keep * min(mine)))
    reasons = []
    for keep, nets_run in narrow.items():
        pns = sorted({pn for _, pn in nets_run})
        pn = f"{pns[0]:g}" if len(pns) == 1 else f"{pns[0]:g}-{pns[-1]:g}"
        reasons.append(f"{_join([_widths_text(w) for w, _ in nets_run])} at p_keep {keep:g} (p\u00b7n = {pn} < "
                       f"{MIN_PN}) where the paper has {theirs_text}")
    least = min(MIN_EPOCHS, paper_cfgs[0].train.epochs)
    short = [str(c.train.epochs) for c in cfgs if c.train.epochs < least]
    if short:
        reasons.append(f"{_join(short)} epochs (< {least})")
    papers = describe(paper_cfgs[0])["data"]
    other = [name for name in (describe(c)["data"] for c in cfgs) if name != papers]
    if other:
        reasons.append(f"{_join(other)} where the paper uses {papers}")
    return reasons


def _selection_text(selection: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in selection.items())


def scale_line(spec: StudySpec, selections: Selections, seeds: int | None = None,
               paper: StudySpec | None = None) -> str:
    """What an arm of a claim ran at (every grid point of it: ``matching``), and the same arm at paper scale
    when the study has a ``full`` profile."""
    cfgs = matching(spec, selections)
    if not cfgs:
        return ""
    paper_cfgs = matching(paper, selections) if paper is not None else []
    if not paper_cfgs:
        return setup_text(cfgs, seeds)
    mine = [w for w in (widths(c) for c in cfgs) if w]
    theirs = [w for w in (widths(c) for c in paper_cfgs) if w]
    ratio = ""
    if mine and theirs and min(map(min, theirs)) != min(map(min, mine)):
        factor = min(map(min, theirs)) / min(map(min, mine))
        ratio = f" ({factor:g}x wider)" if factor > 1 else f" ({1 / factor:g}x narrower)"
    return f"{setup_text(cfgs, seeds)}; paper scale: {setup_text(paper_cfgs, len(paper.seeds), ratio)}"
