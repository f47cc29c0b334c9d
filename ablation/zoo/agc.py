"""Adaptive gradient clipping (AGC), Brock, De, Smith & Simonyan (2021), "High-Performance
Large-Scale Image Recognition Without Normalization" (NFNets), section 4.1.

For each unit ``i`` of a parameter ``W`` with gradient ``G``::

    G_i <- clipping * max(||W_i||, eps) / ||G_i|| * G_i    if ||G_i|| / max(||W_i||, eps) > clipping
    G_i <- G_i                                             otherwise

(Frobenius norms; paper defaults ``clipping`` = lambda = 0.01, ``eps`` = 1e-3).

Unit-wise: a unit is one slice along the LAST axis (the output unit). For a Dense kernel
``(in, out)`` the norms are over axis 0; for a Conv2D kernel ``(h, w, in, out)`` over axes 0-2.
Scalars and 1-D parameters (biases, BN scales/offsets, gains) are one unit: the norm of the whole
vector, as in the NFNets reference implementation.

:func:`adaptive_clip` is the pure function; :class:`AdaptiveGradientClipping` wraps any Keras
optimizer (as ``keras.optimizers.LossScaleOptimizer`` does) so that ``model.fit`` clips before
every update, with or without ``jit_compile``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from ablation.zoo import checks


def _unit_norm(x: Any) -> Any:
    """Frobenius norm per output unit (last axis), broadcastable to ``x``; whole norm for ndim <= 1."""
    x = ops.convert_to_tensor(x)
    if len(x.shape) <= 1:
        return ops.sqrt(ops.sum(ops.square(x)))
    axes = tuple(range(len(x.shape) - 1))
    return ops.sqrt(ops.sum(ops.square(x), axis=axes, keepdims=True))


def _check_clip_args(clipping: Any, eps: Any) -> None:
    if isinstance(clipping, bool) or not isinstance(clipping, (int, float)) or not clipping > 0:
        raise checks.invalid("clipping", "a positive float (lambda)", clipping)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise checks.invalid("eps", "a positive float", eps)


def clip_one(grad: Any, param: Any, clipping: float = 0.01, eps: float = 1e-3) -> Any:
    """Adaptive clipping of one gradient tensor against its parameter (see the module docstring)."""
    grad = ops.convert_to_tensor(grad)
    param = ops.cast(ops.convert_to_tensor(param), grad.dtype)
    max_norm = clipping * ops.maximum(_unit_norm(param), eps)
    grad_norm = _unit_norm(grad)
    clipped = grad * (max_norm / ops.maximum(grad_norm, 1e-6))
    return ops.where(grad_norm > max_norm, clipped, grad)


def adaptive_clip(grads: Sequence[Any], params: Sequence[Any], clipping: float = 0.01,
                  eps: float = 1e-3) -> list[Any]:
    """Unit-wise adaptive gradient clipping (Brock et al. 2021).

    Args:
        grads: gradients, one per parameter (``None`` entries pass through).
        params: the parameters (tensors or variables) the gradients belong to.
        clipping: lambda, the largest allowed ratio ``||G_i|| / max(||W_i||, eps)``.
        eps: floor of the parameter norm, so zero-initialized parameters can still move.

    Returns:
        The clipped gradients, in order.
    """
    _check_clip_args(clipping, eps)
    if len(grads) != len(params):
        raise ValueError(f"Invalid value for argument 'params': expected one parameter per gradient "
                         f"({len(grads)}). Received: {len(params)} parameters")
    return [g if g is None else clip_one(g, p, clipping, eps) for g, p in zip(grads, params)]


@keras.saving.register_keras_serializable(package="ablation")
class AdaptiveGradientClipping(keras.optimizers.Optimizer):
    """Wraps any Keras optimizer and applies :func:`adaptive_clip` to the gradients first.

    ``AdaptiveGradientClipping(keras.optimizers.SGD(0.1, momentum=0.9), clipping=0.01)`` works in
    ``model.compile``/``model.fit`` (TensorFlow backend, ``jit_compile`` on or off) and saves with
    the model. The inner optimizer does everything else (learning rate, schedules, weight decay,
    its own clipnorm if set, constraints); ``learning_rate`` and ``iterations`` are the inner
    optimizer's. Clipping acts on the gradients as given to ``apply`` (single-device semantics:
    under a multi-replica strategy it would act before the cross-replica sum).

    Brock et al. do not clip the final linear layer; ``exclude`` skips every variable whose
    ``path`` contains one of the given substrings -- by default ``("logits",)``, the zoo's output
    layer. Pass ``exclude=()`` to clip every parameter.

    Args:
        inner_optimizer: the ``keras.optimizers.Optimizer`` that applies the clipped gradients.
        clipping: lambda (paper default 0.01).
        eps: floor of the parameter norm (paper default 1e-3).
        exclude: substrings of variable paths that are never clipped.
        name: optimizer name.
    """

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, clipping: float = 0.01,
                 eps: float = 1e-3, exclude: Sequence[str] = ("logits",), name: str | None = None,
                 **kwargs: Any) -> None:
        if kwargs:
            raise ValueError(f"AdaptiveGradientClipping does not support arguments {tuple(kwargs)}: "
                             "set them on the inner optimizer.")
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise checks.invalid("inner_optimizer", "a keras.optimizers.Optimizer instance", inner_optimizer)
        _check_clip_args(clipping, eps)
        if isinstance(exclude, str) or not all(isinstance(e, str) for e in exclude):
            raise checks.invalid("exclude", "a sequence of strings", exclude)
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.clipping, self.eps, self.exclude = float(clipping), float(eps), tuple(exclude)

    def build(self, var_list: Sequence[Any]) -> None:
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self) -> list[Any]:
        return self._variables + self.inner_optimizer.variables

    def _clip(self, grads: Sequence[Any], values: Sequence[Any], variables: Sequence[Any]) -> list[Any]:
        """Clip each gradient against the value of its variable, skipping excluded paths."""
        out = []
        for grad, value, var in zip(grads, values, variables):
            path = getattr(var, "path", getattr(var, "name", ""))
            skip = grad is None or any(e in path for e in self.exclude)
            out.append(grad if skip else clip_one(grad, value, self.clipping, self.eps))
        return out

    def _unscaled_clip(self, grads: Sequence[Any], values: Sequence[Any], variables: Sequence[Any]) -> list[Any]:
        """Clip against the unscaled gradients when the inner optimizer scales the loss."""
        scale = self.inner_optimizer.loss_scale_factor
        if scale is None:
            return self._clip(grads, values, variables)
        unscaled = [g if g is None else g / scale for g in grads]
        return [g if g is None else g * scale for g in self._clip(unscaled, values, variables)]

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> None:
        if not self.built:
            if trainable_variables is None:
                raise ValueError("AdaptiveGradientClipping must be built or given trainable_variables.")
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
            self.built = True
        variables = list(trainable_variables) if trainable_variables is not None else self._trainable_variables
        clipped = self._unscaled_clip(list(grads), variables, variables)
        self.inner_optimizer.apply(clipped, trainable_variables=trainable_variables)

    def stateless_apply(self, optimizer_variables: Sequence[Any], grads: Sequence[Any],
                        trainable_variables: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """Stateless form (JAX backend): clip, then the inner optimizer's ``stateless_apply``."""
        own = len(self._variables)
        clipped = self._unscaled_clip(list(grads), trainable_variables, self._trainable_variables)
        new_values, new_inner = self.inner_optimizer.stateless_apply(
            list(optimizer_variables)[own:], clipped, trainable_variables)
        return new_values, list(optimizer_variables)[:own] + list(new_inner)

    def scale_loss(self, loss: Any) -> Any:
        return self.inner_optimizer.scale_loss(loss)

    @property
    def learning_rate(self) -> Any:
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate: Any) -> None:
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self) -> Any:
        return self.inner_optimizer.iterations

    def finalize_variable_values(self, var_list: Sequence[Any]) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name,
                "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
                "clipping": self.clipping, "eps": self.eps, "exclude": list(self.exclude)}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> AdaptiveGradientClipping:
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("inner_optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)
