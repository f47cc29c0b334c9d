"""Trials per hour through ``ablation run``, packed (the default) against ``--no-pack``, in one run.

The study is the bundled quickstart (MNIST-1D, 6 grid points x 5 seeds = 30 trials, 200 epochs of
40 steps, the activations probe), run whole through the command line as a user runs it, reports
off. Each backend runs packed, then alone, one after the other; the wall time of each run is the
command's, start-up and writes included, and the trials' own figures come from the run folder
(``trials.csv``: pack sizes, seconds per epoch, first-epoch seconds). Under JAX each mode runs
first with an empty compilation cache (cold: a first run) and then again with the programs the
first left on disk (warm: a re-run, as ``backend.jax_compilation_cache`` keeps them). Timings on a
shared machine are noisy: read the ratios.

    python benchmarks/bench_packs.py [--backends jax tensorflow] [--study quickstart] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(study: str, backend: str, out: Path, packed: bool, cache: Path) -> dict:
    cmd = [sys.executable, "-m", "ablation.cli", "run", study, "--backend", backend, "--out", str(out),
           "--no-report", "--quiet"] + ([] if packed else ["--no-pack"])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_COMPILATION_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    import pandas as pd

    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    trials = pd.read_csv(folder / "trials.csv")
    packs = trials.drop_duplicates("pack_id")
    return {"wall_s": wall, "trials": len(trials), "completed": int((trials["status"] == "completed").sum()),
            "packs": len(packs), "pack_sizes": sorted(packs["pack_size"].astype(int).tolist(), reverse=True),
            "train_s": float(packs["wall_time_s"].sum()),
            "epoch_ms": float(trials["time_per_epoch_s"].median() * 1e3),
            "first_epoch_s": float(trials["first_epoch_time_s"].median())}


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer. Received: {text!r}")
    return int(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=["jax", "tensorflow"], choices=["jax", "tensorflow"])
    p.add_argument("--study", default="quickstart", help="a bundled study or a study file (default quickstart)")
    p.add_argument("--repeats", type=_positive, default=1, help="runs of each kind, alternating (the fastest is kept)")
    args = p.parse_args()
    from ablation import spec

    try:  # a study that cannot run stops here, in one line, before any run starts
        spec.load(spec.find_study(args.study))
    except spec.SpecError as exc:
        p.exit(2, f"error: {exc}\n")

    import psutil

    print(f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores; Python "
          f"{platform.python_version()}; study {args.study}; one run at a time")
    print(f"  {'backend':16s} {'mode':8s} {'trials':>6s} {'packs':>18s} {'wall s':>7s} {'training s':>10s} "
          f"{'epoch ms':>8s} {'1st epoch s':>11s} {'trials/hour':>11s}")
    best: dict[tuple[str, bool], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for b in args.backends:
            for rep in range(args.repeats):
                for packed in (True, False):
                    cache = Path(tmp) / f"cache-{b}-{packed}-{rep}"
                    for cached in ((False, True) if b == "jax" else (False,)):
                        out = Path(tmp) / f"{b}-{packed}-{rep}-{cached}"
                        r = _run(args.study, b, out, packed, cache)
                        r["per_hour"] = r["completed"] / r["wall_s"] * 3600
                        mode = "packed" if packed else "no-pack"
                        name = f"{b} ({'warm' if cached else 'cold'})" if b == "jax" else b
                        sizes = ",".join(map(str, r["pack_sizes"][:4])) + ("..." if len(r["pack_sizes"]) > 4 else "")
                        print(f"  {name:16s} {mode:8s} {r['completed']:>3d}/{r['trials']:<2d} {r['packs']:>4d} "
                              f"({sizes:>11s}) {r['wall_s']:7.1f} {r['train_s']:10.1f} {r['epoch_ms']:8.2f} "
                              f"{r['first_epoch_s']:11.2f} {r['per_hour']:11.0f}", flush=True)
                        key = (name, packed)
                        if key not in best or r["wall_s"] < best[key]["wall_s"]:
                            best[key] = r
    print("\ntrials per hour, packed / --no-pack (target >= 4x)")
    for name in dict.fromkeys(k[0] for k in best):
        packed, alone = best.get((name, True)), best.get((name, False))
        if packed and alone:
            print(f"  {name:16s} {packed['per_hour'] / alone['per_hour']:.2f}x   "
                  f"({packed['wall_s']:.1f} s vs {alone['wall_s']:.1f} s for {packed['completed']} trials)")


if __name__ == "__main__":
    main()
