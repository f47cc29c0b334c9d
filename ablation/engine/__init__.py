"""Running a study: checks before the first trial (:mod:`preflight`), keras-tuner's grid, oracle and
tuner (:mod:`hypermodel`, :mod:`oracle`, :mod:`tuner`, :mod:`resume`), workers and their heartbeats
(:mod:`auth`, :mod:`heartbeat`, :mod:`cluster`), what a run prints and logs (:mod:`progress`,
:mod:`tensorboard`), the orchestration (:mod:`runner`, :mod:`sequential`) and the Python API
(:mod:`study`: ``Study`` and ``run``).

May import: every stage below it (base, zoo, data, train, spec, trials, stats, report).
"""
