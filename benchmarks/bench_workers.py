"""Throughput of ``--workers 2`` against ``--workers 1`` on the quickstart study.

Runs the quickstart study's ``cpu`` profile (or another study/profile) twice into fresh
temporary folders, once with one worker and once with N, and prints trials per minute and the
ratio. Both runs do the same trials (checked).

    python benchmarks/bench_workers.py [--study quickstart] [--profile cpu] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ablation.stats import records  # noqa: E402
from ablation.engine import runner
from ablation import spec


def timed_run(s: spec.StudySpec, workers: int) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        run_dir = runner.run(s, out_dir=out, workers=workers)
        seconds = time.perf_counter() - t
        trials = records.load(run_dir, write_csv=False).trials
        return seconds, sorted(trials["point"] + " seed=" + trials["seed"].astype(str))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", default="quickstart")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    s = spec.load(spec.find_study(args.study), profile=args.profile)
    one, set_one = timed_run(s, 1)
    many, set_many = timed_run(s, args.workers)
    assert set_one == set_many, "the two runs did different trials"
    n = s.n_trials
    print(f"{args.study} ({args.profile}), {n} trials, {os.cpu_count()} CPUs")
    print(f"  --workers 1: {one:7.1f} s  {n / one * 60:6.1f} trials/min")
    print(f"  --workers {args.workers}: {many:7.1f} s  {n / many * 60:6.1f} trials/min")
    print(f"  throughput ratio (workers {args.workers} / 1): {one / many:.2f}x")


if __name__ == "__main__":
    main()
