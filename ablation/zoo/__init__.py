"""The model zoo: one MLP builder, a small CNN, named paper variants and custom layers.

```python
from ablation import zoo
model = zoo.mlp(input_shape=(784,), num_classes=10, hidden=(1024, 1024, 2048), dropout=0.5)
model = zoo.create("srivastava2014_mnist")      # a registered paper variant
zoo.list_models()                               # every registered variant
zoo.check_args("hinton2012_mnist", dropout=0.3) # validate without building
```
"""

from __future__ import annotations

from ablation.zoo import variants as _variants  # noqa: F401  (registers the paper variants)
from ablation.zoo.agc import AdaptiveGradientClipping, adaptive_clip
from ablation.zoo.checks import ACTIVATIONS
from ablation.zoo.cnn import cnn
from ablation.zoo.layers import DropConnectDense, ScaledWSDense, StochasticPooling2D, activation_gain
from ablation.zoo.mlp import mlp, outputs_probabilities
from ablation.zoo.registry import (argument_names, check_args, create, list_models, register, required_arguments,
                                   variant_args)

__all__ = [
    "ACTIVATIONS", "AdaptiveGradientClipping", "DropConnectDense", "ScaledWSDense", "StochasticPooling2D",
    "activation_gain", "adaptive_clip", "argument_names", "check_args", "cnn", "create", "list_models",
    "mlp", "outputs_probabilities", "register", "required_arguments", "variant_args",
]
