"""The ground floor every stage stands on: one error style (:mod:`checks`), atomic file writes
(:mod:`files`), the run folder's layout and lock (:mod:`rundir`), and what differs between Keras
backends (:mod:`backend`).

May import: nothing else in ``ablation`` (only third-party libraries).
"""
