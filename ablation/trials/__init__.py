"""One grid point's training, from a :class:`~ablation.spec.TrialConfig` to records: its model (the
zoo's or the user's function, :mod:`factory`), its data and seeds (:mod:`trial`), its metrics
(:mod:`metrics`), and several members trained together as a pack (:mod:`batches`, :mod:`pack`).

May import: :mod:`ablation.base`, :mod:`ablation.zoo`, :mod:`ablation.data`, :mod:`ablation.train`,
:mod:`ablation.spec`.
"""
