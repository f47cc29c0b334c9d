"""The quickstart's first grid point end to end: ``ablation run`` per trial-step against a hand-written loop.

Issue 20's criterion: the quickstart's first grid point (the MNIST-1D reference MLP, ReLU, no dropout) with
8 seeds and 40 epochs, run by ``ablation run`` as a user runs it; its wall time minus the start-up (the
same study's ``--dry-run``: imports, checks), divided by its trial-steps (8 trials x 40 epochs x 40 steps),
against one step of the hand-written whole-epoch loop (``whole_epoch.epoch_runner``: one compiled program
per epoch, no validation, no bookkeeping) of the same net, optimizer and batch. Measured with the
quickstart's own probes (``activations``) and without any, each from an empty compilation cache (a first
run) and again with the cache filled (a re-run), each into a fresh run folder.

    python benchmarks/bench_quickstart_point.py [--backend jax] [--seeds 8] [--epochs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fixed_costs import _timed  # noqa: E402  (wall time of a command)

ROOT = Path(__file__).resolve().parents[1]


def point_study(seeds: int, epochs: int, probes: bool) -> str:
    """The quickstart study file restricted to its first grid point, with ``seeds`` seeds and ``epochs`` epochs
    (and without its probes unless ``probes``); its claims are dropped (they compare points it no longer has)."""
    text = (ROOT / "studies" / "quickstart.toml").read_text()
    head = _set(text[:text.index("[[claims]]")], "seeds", str(list(range(seeds))))
    if not probes:
        head = head.replace('probes = ["activations"]\n', "")
    rest = _set(text[text.index("\n[data]"):text.index("\n[grid]") + 1], "epochs", str(epochs))
    return head + rest + '[grid]\nactivation = ["relu"]\ndropout = [0.0]\n'


def _set(text: str, key: str, value: str) -> str:
    """``text`` with its one ``key = ...`` line set to ``value`` (the quickstart's file must still have it)."""
    text, found = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    if found != 1:
        raise SystemExit(f"studies/quickstart.toml: expected one '{key} = ...' line. Received: {found}")
    return text


def loop_step_s(backend: str, epochs: int) -> float:
    """Seconds per step of the whole-epoch loop on the quickstart net (median epoch after the first)."""
    import subprocess

    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from ablation.base import backend
backend.start()
import dataclasses
from ablation import spec as spec_module
from ablation.engine.hypermodel import AblationHyperModel
from bench_models import _loop
s = spec_module.loads(open({str(ROOT / 'studies' / 'quickstart.toml')!r}).read())
cfg = s.resolve(s.points()[0], 0)
cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs={epochs} + 1))
print(_loop(cfg, AblationHyperModel(s).dataset(cfg))["step_s"])
"""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=tempfile.gettempdir()).stdout
    return float(out.strip().splitlines()[-1])


def phases(out: Path) -> str:
    """The run's phases from its run.json (the chief's start-up, checks, trials; the packs' compile, train,
    evaluate, probes, writes), one line."""
    (run_json,) = out.glob("*/run.json")
    got = json.loads(run_json.read_text())["invocations"][-1].get("phases", {})
    keys = ("start_s", "checks_s", "trials_s", "worker_start_s", "build_s", "compile_s", "train_s", "evaluate_s",
            "probes_s", "writes_s", "records_s")
    return ", ".join(f"{k[:-2]} {got[k]:.2f}" for k in keys if isinstance(got.get(k), (int, float)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["jax", "tensorflow"], default="jax")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--epochs", type=int, default=40)
    args = p.parse_args()
    for name, value in (("--seeds", args.seeds), ("--epochs", args.epochs)):
        if value < 1:
            p.exit(2, f"error: {name}: expected a positive integer. Received: {value}\n")
    os.environ.setdefault("KERAS_BACKEND", "jax")  # hardware() pulls in Keras: quietly
    from ablation.engine.runner import hardware

    machine = hardware()
    py = sys.executable
    steps = 4000 // 100  # MNIST-1D's 4,000 training sequences, batch 100
    trial_steps = args.seeds * args.epochs * steps
    print(f"# {machine['cpu']}, {machine['cores']} cores; backend {args.backend}; the quickstart's first point, "
          f"{args.seeds} seeds x {args.epochs} epochs x {steps} steps = {trial_steps} trial-steps; the machine may be "
          f"shared: compare within this run")
    loop = loop_step_s(args.backend, max(args.epochs, 5))
    print(f"  whole-epoch loop: {loop * 1e3:.4f} ms/step")
    for probes in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            study = tmp_path / "point.toml"
            study.write_text(point_study(args.seeds, args.epochs, probes))
            base = [py, "-m", "ablation", "run", str(study), "--backend", args.backend, "--no-report", "--quiet"]

            def timed(cmd: list[str], cache: str) -> float:
                env = {**os.environ, "KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "2",
                       "JAX_COMPILATION_CACHE_DIR": str(tmp_path / cache),
                       "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
                return _timed(cmd, env)[0]

            # each start-up from the same cache state as its run: a cold dry run in a cache of its own, the first
            # run in another empty one; then, with that cache filled, a dry run and a second run
            rows = [("empty cache", timed([*base, "--dry-run"], "cold-dry"),
                     timed([*base, "--out", str(tmp_path / "a")], "c"))]
            rows.append(("filled cache", timed([*base, "--dry-run"], "c"),
                         timed([*base, "--out", str(tmp_path / "b")], "c")))
            for (cache, dry, wall), out in zip(rows, ("a", "b")):
                per = (wall - dry) / trial_steps
                print(f"  {'probes' if probes else 'no probes':9s} {cache:12s}: wall {wall:6.2f} s - start-up "
                      f"(--dry-run) {dry:5.2f} s = {per * 1e3:.4f} ms per trial-step, {per / loop:5.2f}x the loop")
                print(f"    run.json phases (s): {phases(tmp_path / out)}")

if __name__ == "__main__":
    main()
