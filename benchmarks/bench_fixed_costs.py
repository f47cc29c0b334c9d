"""A small study's fixed costs through the command line, as a user meets them, in one run.

- ``ablation run studies/quickstart.toml --dry-run``: wall time (it prints the grid, trains nothing);
- the imports alone: ``python -c "import ablation.base.backend as b; b.choose(B); b.start()"`` (Python,
  the backend and Keras), against a bare ``python -c pass``;
- a 10-trial tiny study (MNIST-1D MLP, 2 grid points x 5 seeds, 30 epochs), packed and ``--no-pack``,
  each from an empty JAX compilation cache: wall time, seconds to the command's first output line,
  and from ``run.json`` the phases (start-up, checks, trials, records) and the training paths taken.

Each figure is the median of ``--repeats`` runs. The machine may be shared: compare within one run.

    python benchmarks/bench_fixed_costs.py [--backend jax] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = """
[study]
name = "tiny_fixed"
seeds = [0, 1, 2, 3, 4]
[data]
name = "mnist1d"
[model]
name = "mnist1d_mlp"
[train]
epochs = 30
batch_size = 100
optimizer = "adam"
learning_rate = 0.01
[grid]
dropout = [0.0, 0.3]
"""

ROOT = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str], env: dict) -> tuple[float, float | None, str]:
    """Wall seconds, seconds to the first line on stdout, and the output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    first, lines = None, []
    for line in proc.stdout:
        if first is None and line.strip():
            first = time.perf_counter() - start
        lines.append(line)
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{''.join(lines)[-3000:]}")
    return time.perf_counter() - start, first, "".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["jax", "tensorflow"], default="jax")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    if args.repeats < 1:
        p.exit(2, f"error: --repeats: expected a positive integer. Received: {args.repeats}\n")
    py = sys.executable
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; backend {args.backend}; "
          f"median of {args.repeats}; the machine may be shared: compare within this run")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = {**os.environ, "KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        rows: dict[str, list[float]] = {}

        def keep(name: str, value: float | None) -> None:
            if value is not None:
                rows.setdefault(name, []).append(value)

        study = tmp_path / "tiny.toml"
        study.write_text(TINY)
        phases: dict[str, dict] = {}
        for rep in range(args.repeats):
            keep("python -c pass", _timed([py, "-c", "pass"], env)[0])
            keep("imports (backend + keras)", _timed([py, "-c", "import ablation.base.backend as b; b.choose(); b.start()"],
                                                     env)[0])
            wall, first, _ = _timed([py, "-m", "ablation", "run", str(ROOT / "studies/quickstart.toml"), "--dry-run",
                                     "--out", str(tmp_path / "dry")], env)
            keep("quickstart --dry-run: wall", wall)
            for mode in ("packed", "no-pack"):
                out = tmp_path / f"{mode}-{rep}"
                run_env = {**env, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / f"cache-{mode}-{rep}")}
                cmd = [py, "-m", "ablation", "run", str(study), "--out", str(out), "--no-report"]
                wall, first, _ = _timed(cmd + ([] if mode == "packed" else ["--no-pack"]), run_env)
                keep(f"tiny 10x30 {mode}: wall", wall)
                keep(f"tiny 10x30 {mode}: first output line", first)
                (folder,) = [d for d in out.iterdir() if d.is_dir()]
                meta = json.loads((folder / "run.json").read_text())
                phases[mode] = {k: meta["invocations"][-1].get(k) for k in ("phases", "train_paths")}
                import pandas as pd

                trials = pd.read_csv(folder / "trials.csv")
                keep(f"tiny 10x30 {mode}: first epoch of a pack (median)", float(trials["first_epoch_time_s"].median()))
        for name, values in rows.items():
            print(f"  {name:50s} {statistics.median(values):8.2f} s")
        packed, alone = statistics.median(rows["tiny 10x30 packed: wall"]), statistics.median(
            rows["tiny 10x30 no-pack: wall"])
        print(f"  {'tiny 10x30: --no-pack / packed':50s} {alone / packed:8.2f}x")
        for mode, info in phases.items():
            print(f"  run.json {mode}: {json.dumps(info)}")


if __name__ == "__main__":
    main()
