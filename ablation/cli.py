"""The ``ablation`` command: run studies, render reports, list what exists, join as a worker.

    ablation run STUDY [--profile quick|full] [--workers N] [--out DIR] [--dry-run]
                       [--backend jax|tensorflow] [--pack-size N | --no-pack]
                       [--precision float32|mixed_bfloat16|mixed_float16] [--xla|--no-xla]
                       [--report FILE | --no-report] [--quiet]
    ablation report RUN_DIR [-o FILE]
    ablation list models|datasets|studies
    ablation worker STUDY --chief HOST:PORT [--out DIR] [--profile P]

Bad input (a typo in a study file, an impossible value) prints one line ``error: ...`` and exits
with status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other usage error
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ablation", description="Keras model zoo and ablation studies.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run (or resume) a study and render its report")
    _study_args(run)
    run.add_argument("--workers", type=int, default=1, help="local parallel worker processes (default 1)")
    run.add_argument("--dry-run", action="store_true", help="print the grid and the trial count, run nothing")
    run.add_argument("--report", metavar="FILE", help="write the HTML report here (default RUN_DIR/report.html)")
    run.add_argument("--no-report", action="store_true", help="do not render the report")
    run.add_argument("--quiet", action="store_true", help="no progress lines")

    rep = sub.add_parser("report", help="render the HTML report of a run folder")
    rep.add_argument("run_dir", help="a run folder (runs/<study>-<hash8>)")
    rep.add_argument("-o", "--output", metavar="FILE", help="output file (default RUN_DIR/report.html)")

    lst = sub.add_parser("list", help="list registered models, data sets or bundled studies")
    lst.add_argument("what", choices=["models", "datasets", "studies"])

    wrk = sub.add_parser("worker", help="join a running study as a worker")
    _study_args(wrk)
    wrk.add_argument("--chief", required=True, metavar="HOST:PORT", help="the chief oracle's address")
    wrk.add_argument("--tuner-id", help="unique worker name (default worker-<host>-<pid>)")
    wrk.add_argument("--threads", type=int, help="TensorFlow intra-op threads")
    wrk.add_argument("--cpus", help="comma-separated CPU cores to pin to")

    chief = sub.add_parser("chief", help="serve a study's oracle to workers (used by run --workers)")
    _study_args(chief)
    chief.add_argument("--port", type=int, required=True)
    chief.add_argument("--host", default="127.0.0.1")
    return p


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="a study file, or the name of a bundled study (see 'ablation list studies')")
    p.add_argument("--profile", help="a profile of the study file (e.g. quick, full)")
    p.add_argument("--out", default="runs", help="folder for run folders (default runs/)")
    p.add_argument("--backend", choices=["jax", "tensorflow"],
                   help="Keras backend (default: KERAS_BACKEND, else jax when installed, else tensorflow)")
    p.add_argument("--precision", choices=["float32", "mixed_bfloat16", "mixed_float16"],
                   help="override the study's train.precision")
    pack = p.add_mutually_exclusive_group()
    pack.add_argument("--pack-size", type=int, metavar="N",
                      help="train at most N trials of one recipe together (default: chosen from the model size)")
    pack.add_argument("--no-pack", dest="pack_size", action="store_const", const=1,
                      help="train every trial alone (same as --pack-size 1)")
    xla = p.add_mutually_exclusive_group()
    xla.add_argument("--xla", dest="jit_compile", action="store_true", default=None, help="XLA-compile training")
    xla.add_argument("--no-xla", dest="jit_compile", action="store_false", help="no XLA")


def _overrides(args: argparse.Namespace) -> dict:
    out = {}
    if args.precision:
        out["precision"] = args.precision
    if args.jit_compile is not None:
        out["jit_compile"] = args.jit_compile
    if args.backend:
        out["backend"] = args.backend
    return out


def _load_spec(args: argparse.Namespace):
    from ablation import runner, spec

    path = spec.find_study(args.study)
    return runner.with_backend(runner.apply_overrides(spec.load(path, profile=args.profile), _overrides(args)))


def _cmd_run(args: argparse.Namespace) -> int:
    from ablation import runner, spec

    s = _load_spec(args)
    if args.dry_run:
        print(spec.describe_grid(s))
        print(f"run folder: {runner.run_dir_of(s, args.out)}")
        return 0
    command = "ablation " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    run_dir = runner.run(s, out_dir=args.out, workers=args.workers, overrides=_overrides(args),
                         progress=not args.quiet, command=command, pack_size=args.pack_size)
    if not args.no_report:
        from ablation import report

        out = report.render(run_dir, args.report)
        print(f"report: {out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ablation import report

    print(f"report: {report.render(Path(args.run_dir), args.output)}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "models":
        from ablation import zoo

        names = ["mlp", "cnn"] + zoo.list_models()
    elif args.what == "datasets":
        from ablation import data

        names = data.list_datasets()
    else:
        from ablation import spec

        names = spec.list_studies()
    print("\n".join(names))
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from ablation import runner

    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else None
    runner.work(_load_spec(args), args.out, args.chief, tuner_id=args.tuner_id, threads=args.threads, cpus=cpus,
                pack_size=args.pack_size)
    return 0


def _cmd_chief(args: argparse.Namespace) -> int:
    from ablation import runner

    runner.serve_chief(_load_spec(args), args.out, args.port, args.host)
    return 0


def _is_user_error(exc: Exception) -> bool:
    """Bad input (a study file, an argument, a path), as opposed to a bug in the package."""
    from ablation.records import RunFolderError
    from ablation.spec import SpecError

    return (isinstance(exc, (SpecError, RunFolderError, FileNotFoundError, NotADirectoryError))
            or str(exc).startswith("Invalid value for argument"))


def _choose_backend(args: argparse.Namespace) -> None:
    """Set the Keras backend before anything imports Keras (and, under JAX, a worker's threads)."""
    from ablation import backend

    name = backend.choose(getattr(args, "backend", None))
    threads = getattr(args, "threads", None)
    if name == "jax" and threads and "jax" not in sys.modules:
        from ablation.backend import jax_threads

        jax_threads(threads)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ablation`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    for name in ("workers", "pack_size", "threads"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            print(f"error: argument --{name.replace('_', '-')}: expected a positive integer. Received: {value}",
                  file=sys.stderr)
            return EXIT_USAGE
    try:
        _choose_backend(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    handler = {"run": _cmd_run, "report": _cmd_report, "list": _cmd_list, "worker": _cmd_worker,
               "chief": _cmd_chief}[args.command]
    try:
        return handler(args)
    except (ValueError, FileNotFoundError, NotADirectoryError) as exc:
        if not _is_user_error(exc):
            raise  # a bug, not bad input: keep the traceback
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
