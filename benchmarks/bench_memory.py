"""Memory across many trials: resident set size of a run (chief and workers) after each of 300 tiny trials.

Keras and the backends keep a little memory per model they build, however carefully a process
clears its session, so a long study in one process grows without bound. The runner trains in a
worker process that is replaced by a fresh one once it grew by ``cluster.RECYCLE_MIB``; the chief
(this process) only serves the oracle. This runs a 300-trial study (digits, a tiny MLP, one epoch,
each trial alone: ``--pack-size 1``, the worst case) and prints the RSS of this process plus its
workers after trial 20 (the warm-up), 100, 200 and 300, and the growth after the warm-up (target:
under 50 MiB). ``--in-process`` trains in this process instead, for comparison.

    python benchmarks/bench_memory.py [--trials 300] [--pack-size 1] [--in-process]
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import psutil  # noqa: E402

from ablation.engine import runner  # noqa: E402
from ablation import spec

STUDY = """
[study]
name = "memory"
seeds = [{seeds}]
[data]
name = "digits"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 1
batch_size = 128
jit_compile = false
[grid]
activation = ["relu", "tanh"]
"""
WARM_UP = 20
TARGET_MIB = 50


def tree_rss_mib() -> float:
    """RSS of this process and every process it started (the workers), in MiB."""
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--pack-size", type=int, default=1)
    p.add_argument("--in-process", action="store_true", help="train in this process (no worker recycling)")
    args = p.parse_args()
    seeds = ", ".join(str(i) for i in range(args.trials // 2))
    s = spec.loads(STUDY.format(seeds=seeds))
    rss: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        runner.run(s, out_dir=out, pack_size=args.pack_size, in_process=args.in_process,
                   progress=lambda line: rss.append(tree_rss_mib()) if line.startswith("trial ") else None)
    n = len(rss)
    warm = rss[min(WARM_UP, n) - 1]
    marks = sorted({m for m in (WARM_UP, 100, 200, n) if m <= n})
    print(f"{n} trials ({'in this process' if args.in_process else 'in worker processes'}, pack size "
          f"{args.pack_size}); RSS of the run after trial " + ", ".join(f"{m}: {rss[m - 1]:.0f} MiB" for m in marks))
    after = rss[WARM_UP:] or rss[-1:]
    print(f"growth after the warm-up (trial {WARM_UP} to {n}): {rss[-1] - warm:+.0f} MiB "
          f"(largest {max(after) - warm:+.0f} MiB; target < {TARGET_MIB} MiB)")


if __name__ == "__main__":
    main()
