"""Memory across many trials: resident set size after each of 100 small trials.

The runner clears the Keras session and collects garbage after every trial, so memory should
stay flat. This runs a 100-trial study (digits, a tiny MLP, one epoch) in this process and prints
RSS after trial 10, 50 and 100 and the growth per trial over the last 90.

    python benchmarks/bench_memory.py [--trials 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import psutil  # noqa: E402

from ablation import runner, spec  # noqa: E402

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100)
    args = p.parse_args()
    seeds = ", ".join(str(i) for i in range(args.trials // 2))
    s = spec.loads(STUDY.format(seeds=seeds))
    proc = psutil.Process()
    rss: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        runner.run(s, out_dir=out, progress=lambda line: rss.append(proc.memory_info().rss / 2**20)
                   if line.startswith("trial ") else None)
    n = len(rss)
    print(f"{n} trials; RSS after trial 10: {rss[min(9, n - 1)]:.0f} MiB, 50: {rss[min(49, n - 1)]:.0f} MiB, "
          f"{n}: {rss[-1]:.0f} MiB")
    print(f"growth per trial over trials 10..{n}: {(rss[-1] - rss[min(9, n - 1)]) / max(1, n - 10):.2f} MiB")


if __name__ == "__main__":
    main()
