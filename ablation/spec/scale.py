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
