"""Keras-level training pieces that know nothing of studies: optimizers and the scanned training
step (:mod:`training`), early stopping (:mod:`stopping`), and the probes that measure a network while
it trains (:mod:`probes`: activations, saturation, dead units, gradient norms, timing).

May import: :mod:`ablation.base`, :mod:`ablation.zoo`.
"""
