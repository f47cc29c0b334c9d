"""A small study's fixed costs through the command line, as a user meets them, in one run.

- ``ablation run studies/quickstart.toml --dry-run``: wall time (it prints the grid, trains nothing);
- the imports alone: ``python -c "import ablation.base.backend as b; b.choose(B); b.start()"`` (Python,
  the backend and Keras), then with keras-tuner and the runner (``import ablation.engine.tuner``), against
  a bare ``python -c pass``;
- a 10-trial tiny study (MNIST-1D MLP, 2 grid points x 5 seeds, 30 epochs), packed and ``--no-pack``,
  each from an empty JAX compilation cache: wall time, seconds to the command's first output line and
  to its first trained epoch (a worker's first progress note appearing in the run folder), and from
  ``run.json`` the phases (start-up, checks, trials and the packs' phases, records) and the training
  paths taken.

Each figure is the median of ``--repeats`` runs. The machine may be shared: compare within one run.
``--startup-only`` measures the first three (no study is trained); ``--against DIR`` measures the same
figures for another checkout of the project (e.g. the main branch), run for run alternately with this
one, so that before and after share the machine's load; ``--against-path DIR`` puts DIR first on the
'before' runs' Python path (e.g. another version of a dependency: ``pip install --target DIR
ml_dtypes==0.7.0``).

    python benchmarks/bench_fixed_costs.py [--backend jax] [--repeats 1] [--startup-only] [--against DIR]
                                           [--against-path DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _timed(cmd: list[str], env: dict, cpu: list[float] | None = None,
           watch: Path | None = None) -> tuple[float, float | None, str, float | None]:
    """Wall seconds, seconds to the first line on stdout, the output, and the seconds until a file appears
    under ``watch`` (``**/progress/*.json``: a worker's first epoch note; None without ``watch``); ``cpu``
    receives the command's CPU seconds (user + system: less sensitive than wall time to other work on a
    shared machine)."""
    import threading

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    seen: list[float] = []
    finished = threading.Event()

    def look() -> None:
        while not finished.is_set() and not seen:
            if watch is not None and watch.exists() and next(watch.glob("*/progress/*.json"), None) is not None:
                seen.append(time.perf_counter() - start)
            time.sleep(0.02)

    watcher = threading.Thread(target=look, daemon=True)
    if watch is not None:
        watcher.start()
    # cwd: a folder without the package, so that PYTHONPATH's checkout is the one imported (python -c and -m
    # put the working folder first on sys.path)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=tempfile.gettempdir())
    first, lines = None, []
    for line in proc.stdout:
        if first is None and line.strip():
            first = time.perf_counter() - start
        lines.append(line)
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{''.join(lines)[-3000:]}")
    wall = time.perf_counter() - start
    finished.set()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, first, "".join(lines), (seen[0] if seen else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["jax", "tensorflow"], default="jax")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--startup-only", action="store_true", help="imports and the dry run only: no study is trained")
    p.add_argument("--against", type=Path, help="another checkout of the project, measured alternately with this one")
    p.add_argument("--against-path", type=Path, help="a folder first on the 'before' runs' Python path")
    args = p.parse_args()
    if args.against is not None and not (args.against / "ablation" / "__init__.py").is_file():
        p.exit(2, f"error: --against: expected a checkout of keras-ablation. Received: {args.against}\n")
    if args.against_path is not None and args.against is None:
        p.exit(2, f"error: --against-path: expected --against too. Received: {args.against_path}\n")
    if args.repeats < 1:
        p.exit(2, f"error: --repeats: expected a positive integer. Received: {args.repeats}\n")
    py = sys.executable
    os.environ.setdefault("KERAS_BACKEND", args.backend)  # hardware() pulls in Keras: quietly, on the backend measured
    from ablation.engine.runner import hardware

    machine = hardware()
    print(f"# {machine['cpu']}, {machine['cores']} cores; backend {args.backend}; "
          f"median of {args.repeats}; the machine may be shared: compare within this run")
    before = [str(args.against.resolve())] + ([str(args.against_path.resolve())] if args.against_path else []) \
        if args.against else []
    roots = [("", [str(ROOT)])] + ([("before (--against): ", before)] if args.against else [])
    rows: dict[str, list[float]] = {}
    for rep in range(args.repeats):
        for prefix, paths in roots:
            _measure(args, py, paths, prefix, rows)
    for name, values in rows.items():
        print(f"  {name:62s} {statistics.median(values):8.2f} s")


def _measure(args: argparse.Namespace, py: str, paths: list[str], prefix: str, rows: dict[str, list[float]]) -> None:
    """One repeat of every figure for the checkout at ``paths[0]`` (the other paths after it on the Python
    path); names start with ``prefix``."""
    root = Path(paths[0])
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = {**os.environ, "KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}

        def keep(name: str, value: float | None) -> None:
            if value is not None:
                rows.setdefault(prefix + name, []).append(value)

        study = tmp_path / "tiny.toml"
        study.write_text(TINY)
        phases: dict[str, dict] = {}
        keep("python -c pass", _timed([py, "-c", "pass"], env)[0])
        cpu: list[float] = []
        keep("imports (backend + keras)", _timed([py, "-c", "import ablation.base.backend as b; b.choose(); b.start()"],
                                                 env, cpu)[0])
        keep("imports (backend + keras): CPU", cpu[-1])
        keep("imports (+ keras-tuner and the runner)", _timed(
            [py, "-c", "import ablation.base.backend as b; b.choose(); b.start(); import ablation.engine.tuner"],
            env, cpu)[0])
        keep("imports (+ keras-tuner and the runner): CPU", cpu[-1])
        wall, first, _, _ = _timed([py, "-m", "ablation", "run", str(root / "studies/quickstart.toml"), "--dry-run",
                                 "--out", str(tmp_path / "dry")], env, cpu)
        keep("quickstart --dry-run: wall", wall)
        keep("quickstart --dry-run: CPU", cpu[-1])
        keep("quickstart --dry-run: first output line", first)
        if args.startup_only:
            return
        for mode in ("packed", "no-pack"):
            out = tmp_path / f"{mode}"
            run_env = {**env, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / f"cache-{mode}")}
            cmd = [py, "-m", "ablation", "run", str(study), "--out", str(out), "--no-report"]
            wall, first, _, epoch = _timed(cmd + ([] if mode == "packed" else ["--no-pack"]), run_env, watch=out)
            keep(f"tiny 10x30 {mode}: wall", wall)
            keep(f"tiny 10x30 {mode}: first output line", first)
            keep(f"tiny 10x30 {mode}: first trained epoch", epoch)
            (folder,) = [d for d in out.iterdir() if d.is_dir()]
            meta = json.loads((folder / "run.json").read_text())
            phases[mode] = {k: meta["invocations"][-1].get(k) for k in ("phases", "train_paths")}
            import pandas as pd

            trials = pd.read_csv(folder / "trials.csv")
            keep(f"tiny 10x30 {mode}: first epoch of a pack (median)", float(trials["first_epoch_time_s"].median()))
        packed, alone = rows[prefix + "tiny 10x30 packed: wall"][-1], rows[prefix + "tiny 10x30 no-pack: wall"][-1]
        print(f"  {prefix}tiny 10x30: --no-pack / packed: {alone / packed:.2f}x (this repeat)")
        for mode, info in phases.items():
            print(f"  {prefix}run.json {mode}: {json.dumps(info)}")


if __name__ == "__main__":
    main()
