"""The removable parts of a Keras model (:mod:`~ablation.zoo.parts.components`) and the model rebuilt
without some of them (:mod:`~ablation.zoo.parts.variants`): what ``ablation components`` lists and what a
generated ablation study's ``ablate`` axis trains."""

from ablation.zoo.parts.components import DEFAULT_KINDS, KINDS, Component, NotRebuildable, by_id, discover, table
from ablation.zoo.parts.variants import AXIS, BARE, FULL, apply, name_of, parse, rebuildable, removed_by, without

__all__ = ["AXIS", "BARE", "DEFAULT_KINDS", "FULL", "KINDS", "Component", "NotRebuildable", "apply", "by_id",
           "discover", "name_of", "parse", "rebuildable", "removed_by", "table", "without"]
