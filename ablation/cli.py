"""The ``ablation`` command: run studies, render reports, list what exists, join as a worker.

    ablation run STUDY [--profile cpu|full] [--workers N] [--out DIR] [--dry-run]
                       [--backend jax|tensorflow] [--pack-size N | --no-pack]
                       [--precision float32|mixed_bfloat16|mixed_float16] [--xla|--no-xla]
                       [--host HOST] [--port PORT] [--report FILE | --no-report] [--quiet]
                       [--register-claims] [--until-decided [--max-seeds N] [--seeds-per-look K]]
    ablation report RUN_DIR|STUDY [-o FILE] [--profile P] [--out DIR] [--backend B]
    ablation list models|datasets|studies
    ablation worker STUDY --chief HOST:PORT [--out DIR] [--profile P] [--tuner-id ID] [--chief-timeout S]
                          [--token TOKEN]
    ablation components MODEL --data DATA [--include activation,width]
    ablation ablate MODEL --data DATA [--seeds N] [--epochs N] [--components ID,ID] [--mode loco|add-one]
                    [--include activation,width] [--study-file FILE] [--out DIR] [--workers N] [--dry-run]
    ablation chief STUDY [--out DIR] [--host HOST] [--port PORT] [--token TOKEN|generate] [--heartbeat-grace S]

Bad input (a typo in a study file, an impossible value, a path that cannot be used) prints one
line ``error: ...`` and exits with status 2, before anything is written; so does a second
``ablation run`` on a run folder that another process is running. A run that cannot go on (workers
that keep dying, a full disk) prints one line and exits with status 1; finished trials are kept
and the same command resumes. So does a run whose every trial failed, with the first failure's
error; a run with some failed trials exits 0 and says how many. Ctrl-C (or SIGTERM): status 130.
The codes are ``EXIT_CODES``, shown by ``ablation --help``.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import json
import os
import re
import shlex
import signal
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_CODES = f"""exit status:
  {EXIT_OK}    done (a run whose trials partly failed says how many, and where the first one's traceback is)
  {EXIT_FAILED}    the run failed: every trial failed (the first one's error is printed), or the run could not
       go on (workers that keep dying, a full disk, a worker whose chief stopped answering)
  {EXIT_USAGE}    bad input (the study file, an argument, a path, a run folder another process holds),
       reported in one line before anything is written
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C or SIGTERM): run the same command again to resume"""


LISTS = ("models", "datasets", "studies")
# The built-in sets' example shapes: as the zoo's MLPs get them (flattened, the default), and with
# ``flatten = false`` in [data] (tests/test_cli.py checks them against data.load).
BUILTIN_SHAPES = {"digits": ((64,), (8, 8, 1)), "fashion_mnist": ((784,), (28, 28, 1)),
                  "mnist": ((784,), (28, 28, 1)), "mnist1d": ((40,), (40, 1))}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other usage error
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ablation", description="Keras model zoo and ablation studies.", epilog=EXIT_CODES,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run (or resume) a study and render its report", epilog=EXIT_CODES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    _study_args(run)
    run.add_argument("--workers", type=int, default=1, help="local parallel worker processes (default 1)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the grid and the trial count, then run the checks a run starts with (the data set "
                          "loads; the model builds and trains one step on a few examples, every recipe of your own "
                          "model function); run no trial")
    rep_choice = run.add_mutually_exclusive_group()
    rep_choice.add_argument("--report", metavar="FILE", help="write the HTML report here (default RUN_DIR/report.html)")
    rep_choice.add_argument("--no-report", action="store_true", help="do not render the report")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--register-claims", action="store_true",
                     help="register the study file's current claims as the run's (recorded with the time and the "
                          "trials finished by then); without it a run keeps the claims it registered when it started")
    run.add_argument("--until-decided", action="store_true",
                     help="then add seeds, in packs, to the grid points of undecided claims until every claim is "
                          "decided or --max-seeds is reached (an alpha-spending rule keeps the error rate at 5%%)")
    run.add_argument("--max-seeds", type=int, metavar="N",
                     help="with --until-decided: the most seeds a grid point gets (default 20)")
    run.add_argument("--seeds-per-look", type=int, metavar="K",
                     help="with --until-decided: seeds added per look (default 5)")
    _chief_args(run)

    rep = sub.add_parser("report", help="render the HTML report of a run folder (or of a study's run)")
    rep.add_argument("run_dir", metavar="RUN_DIR|STUDY",
                     help="a run folder (runs/<study>-<hash8>), or a study file or bundled study name: its run folder "
                          "under --out, whose registered claims are set against the study file's current ones")
    rep.add_argument("-o", "--output", metavar="FILE", help="output file (default RUN_DIR/report.html)")
    rep.add_argument("--profile", help="with a study: its profile (e.g. cpu, full)")
    rep.add_argument("--out", default="runs", help="with a study: the folder of run folders (default runs/)")
    rep.add_argument("--backend", choices=["jax", "tensorflow"],
                     help="with a study: the backend its run used (default: the study's, else the default backend)")

    lst = sub.add_parser("list", help="list registered models, data sets or bundled studies, each with a line "
                         "about it")
    lst.add_argument("what", nargs="?", choices=LISTS, help="what to list: " + ", ".join(LISTS))

    comp = sub.add_parser("components", help="list the components of a model that `ablation ablate` can remove")
    comp.add_argument("model", metavar="MODEL", help='"file.py:function", "package.module:function" or a .keras file')
    comp.add_argument("--data", required=True, help="a data set name or a data file (gives the input shape and classes)")
    comp.add_argument("--include", default="", help="optional kinds to list as well, comma-separated: activation, width")
    comp.add_argument("--backend", choices=["jax", "tensorflow"], help="Keras backend (default: KERAS_BACKEND, else JAX)")

    abl = sub.add_parser("ablate", help="generate a component ablation study of a model, run it and report it")
    abl.add_argument("model", metavar="MODEL", help='"file.py:function", "package.module:function" or a .keras file')
    abl.add_argument("--data", required=True, help="a data set name or a data file (.npz, .csv, .parquet)")
    abl.add_argument("--seeds", type=int, default=5, help="seeds per arm (default 5)")
    abl.add_argument("--epochs", type=int, help="training epochs per trial (default 10)")
    abl.add_argument("--components", default="", help="component ids to ablate, comma-separated (default: all)")
    abl.add_argument("--mode", choices=["loco", "add-one"], default="loco",
                     help="loco: full + one arm per component removed (default); add-one: bare + one arm per "
                          "component added")
    abl.add_argument("--include", default="", help="optional kinds to search for as well, comma-separated: activation, width")
    abl.add_argument("--name", help="the study's name (default ablate-<function>)")
    abl.add_argument("--study-file", metavar="FILE", help="where to write the study (default ./<name>.toml)")
    abl.add_argument("--out", default="runs", help="the folder of run folders (default runs/)")
    abl.add_argument("--workers", type=int, default=1, help="local parallel worker processes (default 1)")
    abl.add_argument("--backend", choices=["jax", "tensorflow"], help="Keras backend (default: KERAS_BACKEND, else JAX)")
    abl.add_argument("--dry-run", action="store_true", help="write the study file and print its components, train nothing")
    abl.add_argument("--quiet", action="store_true", help="no progress lines")

    wrk = sub.add_parser("worker", help="join a running study as a worker")
    _study_args(wrk)
    wrk.add_argument("--chief", required=True, metavar="HOST:PORT", help="the chief oracle's address")
    wrk.add_argument("--tuner-id", help="unique worker name (default worker-<host>-<pid>); a worker restarted "
                     "under the id of one that died takes its trials over")
    wrk.add_argument("--threads", type=int, help="intra-op threads")
    wrk.add_argument("--cpus", type=_cpu_list, help="comma-separated CPU cores to pin to")
    wrk.add_argument("--chief-timeout", type=float, default=60.0, metavar="SECONDS",
                     help="stop when the chief has not answered for this long (default 60)")
    wrk.add_argument("--recycle-mib", type=float, metavar="MIB",
                     help="end after a pack once memory grew by MIB (a local chief starts a fresh worker)")
    wrk.add_argument("--token", help="the chief's token (default: ABLATION_TOKEN, else the shared run folder's run.json)")

    chief = sub.add_parser("chief", help="serve a study's oracle to remote workers only (no local workers)")
    _study_args(chief)
    _chief_args(chief)
    return p


def _chief_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="where the chief listens (default 127.0.0.1; another address needs a token, and the gRPC "
                        "channel is not encrypted: listen elsewhere only on a trusted network, docs/scale-out.md)")
    p.add_argument("--port", type=int, default=0, help="the chief's port (default: any free port)")
    p.add_argument("--token", help="a secret every worker's call must carry (default: ABLATION_TOKEN); 'generate' "
                   "keeps a new one in the run folder's run.json; required when --host is not a loopback address")
    p.add_argument("--heartbeat-grace", type=float, default=120.0, metavar="SECONDS",
                   help="a worker silent this long has its trials run again elsewhere (default 120)")


@functools.cache
def _profiles_help() -> str:
    """The profiles the bundled studies have, read from their files (for ``--profile``'s help; once per process,
    though three subcommands show it)."""
    from ablation import spec

    found = {name for study in spec.list_studies() for name in _profiles(_study_doc(spec.find_study(study)))}
    return f"the bundled studies have {', '.join(sorted(found))}" if found else "none in the bundled studies"


def _study_doc(path: Path) -> dict | None:
    """A study file's TOML, read without validating it (None when it cannot be read)."""
    import tomllib

    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _profiles(doc: dict | None) -> list[str]:
    """The profile names of a study file's TOML ([] when it has none or could not be read)."""
    return sorted(doc["profiles"]) if doc and isinstance(doc.get("profiles"), dict) else []


def _version() -> str:
    from ablation import __version__

    return __version__


def _cpu_list(text: str) -> list[int]:
    parts = [c.strip() for c in text.split(",")]
    if not parts or not all(c.isdigit() for c in parts) or len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated distinct CPU core numbers. Received: {text!r}")
    available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    missing = [int(c) for c in parts if available is not None and int(c) not in available]
    if missing:
        raise argparse.ArgumentTypeError(f"expected CPU cores this process may use ({', '.join(map(str, sorted(available)))}"
                                         f"). Received: {text!r}")
    return [int(c) for c in parts]


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="a study file, or the name of a bundled study (see 'ablation list studies')")
    p.add_argument("--profile", help=f"a [profiles.NAME] table of the study file, merged over it ({_profiles_help()}; "
                   f"'ablation list studies' shows each study's)")
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
    xla.add_argument("--xla", dest="jit_compile", action="store_true", default=None,
                     help="XLA-compile training where it pays (on a CPU, TensorFlow declines it for sampling "
                          "layers and large bf16 steps)")
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
    from ablation.engine import runner
    from ablation import spec

    path = spec.find_study(args.study)
    s = runner.apply_overrides(spec.load(path, profile=args.profile), _overrides(args))
    return s if _backend_rule(args) else runner.with_backend(s)  # by the rule: the runner sets it


def _backend_rule(args: argparse.Namespace) -> bool:
    """``ablation run`` (or ``chief``) with no backend named anywhere: the runner picks it
    (ablation.engine.backend_choice; a chief serving remote workers records that the default stays)."""
    return bool(getattr(args, "backend_rule", False)) and not getattr(args, "until_decided", False)


def _cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from ablation.engine import runner
    from ablation.engine.options import RunOptions
    from ablation import spec

    s = _load_spec(args)
    if args.dry_run:
        from ablation.engine import backend_choice, preflight
        from ablation.base import backend

        print(spec.describe_grid(s), flush=True)
        checked = preflight.check(runner.with_backend(s), args.out, workers=args.workers)  # rejected now
        choice = backend_choice.decide(backend.name(), pinned=s.backend, by_rule=_backend_rule(args),
                                       traits=checked.traits,
                                       where_not=runner.rule_cannot(RunOptions(workers=args.workers, host=args.host,
                                                                                port=args.port)))
        s = dataclasses.replace(s, backend=choice.backend)
        print(f"backend: {choice.text()}", flush=True)
        print(f"run folder: {Path(args.out) / s.run_name}", flush=True)
        n = len(preflight.recipes(s)) if s.model.factory is not None else 1
        print(f"checks passed: the data set loads, and {n} model recipe{'s' if n > 1 else ''} built and trained "
              f"one step{' each' if n > 1 else ''}; no trial was run")
        return 0
    if args.report and not args.no_report:
        check_output_file(args.report, "report")
    elif not args.no_report:
        from ablation.base import backend

        for b in ([s.backend] if s.backend else backend.available()):  # by the rule: either backend's folder
            run_dir = Path(args.out) / dataclasses.replace(s, backend=b).run_name
            if run_dir.is_dir() and not os.access(run_dir, os.W_OK | os.X_OK):
                raise ValueError(f"{run_dir} is read-only: give the report another path with --report FILE "
                                 f"(or --no-report)")
    command = _command()

    options = RunOptions(workers=args.workers, overrides=_overrides(args), progress=not args.quiet, command=command,
                         pack_size=args.pack_size, host=args.host, port=args.port,
                         register_claims=args.register_claims, token=args.token,
                         heartbeat_grace=args.heartbeat_grace, backend_rule=_backend_rule(args))
    if args.until_decided:
        from ablation.engine import sequential

        run_dir = sequential.run(s, args.out, max_seeds=args.max_seeds or sequential.MAX_SEEDS,
                                 step=args.seeds_per_look or sequential.STEP, progress=options.progress,
                                 options=options)
    else:
        run_dir = runner.run(s, out_dir=args.out, options=options)
    if not args.no_report:
        from ablation import report

        out = report.render(run_dir, args.report, say=print)
        print(f"report: {out}")
    return 0


def check_output_file(path: str | os.PathLike, arg: str) -> Path:
    """``path`` can take a file this process writes: not a folder, in a folder that exists or can be
    made, writable. Raises a one-line ValueError otherwise (before any work)."""
    from ablation.base import checks

    out = Path(path)
    if out.is_dir():
        raise checks.invalid(arg, "a file path (it is a folder)", str(path))
    folder = out.parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise checks.invalid(arg, f"a path inside a folder ({folder} is a file)", str(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise checks.invalid(arg, f"a path this process can write ({folder} is read-only)", str(path))
    return out


def _cmd_report(args: argparse.Namespace) -> int:
    from ablation.stats import records
    from ablation import report
    from ablation.base import rundir

    run_dir, claims = Path(args.run_dir), None
    if not (run_dir / rundir.RUN).is_file() and not (run_dir / rundir.SPEC).is_file() and _is_study(args.run_dir):
        run_dir, claims = _study_run(args)
    records.read_spec(run_dir)  # a run folder, or a one-line error
    if args.output is not None:
        check_output_file(args.output, "output")
    elif not os.access(run_dir, os.W_OK | os.X_OK):
        raise ValueError(f"{run_dir} is read-only: give the report another path with -o FILE")
    try:
        out = report.render(run_dir, args.output, claims=claims, say=print)
    except PermissionError as exc:  # os.access can say yes where the file system says no
        where = args.output or str(run_dir / rundir.REPORT)
        raise ValueError(f"cannot write {where} ({exc.strerror}): give the report another path with -o FILE") \
            from None
    print(f"report: {out}")
    return 0


def _is_study(text: str) -> bool:
    """Whether ``text`` names a study file or a bundled study (rather than a run folder)."""
    from ablation import spec

    path = Path(text)
    return path.suffix == ".toml" or (not path.exists() and text in spec.list_studies())


def _study_run(args: argparse.Namespace) -> tuple[Path, tuple]:
    """The run folder of the study ``args.run_dir`` names, and the study file's current claims."""
    from ablation.engine import runner

    args.study, args.precision, args.jit_compile = args.run_dir, None, None
    s = _load_spec(args)
    run_dir = runner.run_dir_of(s, args.out)
    if not run_dir.is_dir():
        raise ValueError(f"Invalid value for argument 'RUN_DIR|STUDY': expected a study that has run under "
                         f"{args.out} (no run folder {run_dir}; run it first with 'ablation run {args.run_dir}"
                         f"{' --profile ' + args.profile if args.profile else ''}'). Received: {args.run_dir}")
    return run_dir, s.claims


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what is None:
        print(f"error: argument what: expected one of {', '.join(LISTS)} (e.g. 'ablation list studies'). "
              f"Received: nothing", file=sys.stderr)
        return EXIT_USAGE
    rows = {"models": _models, "datasets": _datasets, "studies": _studies}[args.what]()
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {about}".rstrip() for name, about in rows))
    return 0


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _cmd_components(args: argparse.Namespace) -> int:
    from ablation.engine import autostudy
    from ablation.zoo import parts

    found, _, _ = autostudy.find(autostudy.source_table(args.model), autostudy.data_table(args.data),
                                 (*parts.DEFAULT_KINDS, *_csv(args.include)))
    print(parts.table(found) if found else "no component to ablate")
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from ablation.engine import autostudy, study
    from ablation import spec

    doc, found = autostudy.generate(args.model, args.data, seeds=args.seeds, epochs=args.epochs,
                                    components=_csv(args.components) or None, mode=args.mode,
                                    include=_csv(args.include), name=args.name,
                                    base=Path(args.study_file).parent if args.study_file else Path.cwd())
    path = Path(args.study_file or f"{doc['study']['name']}.toml")
    autostudy.write(doc, found, path, _command())
    print(f"study: {path} ({len(doc['grid']['ablate'])} arms x {len(doc['study']['seeds'])} seeds)")
    if args.dry_run:
        from ablation.zoo import parts

        print(parts.table(found))
        return 0
    result = study.run(spec.load(path), out=args.out, workers=args.workers, progress=not args.quiet)
    print(f"report: {result.run_dir / 'report.html'}")
    return 0


def _summary(text: str | None, limit: int = 110) -> str:
    """The first sentence of a docstring or description, cut to ``limit`` characters."""
    first = re.split(r"(?<=[a-z0-9)\]])\. (?=[A-Z])", " ".join((text or "").split()))[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 3].rstrip() + "..."


def _models() -> list[tuple[str, str]]:
    """Each model's name and the first line of its builder's or variant's docstring."""
    from ablation import zoo
    from ablation.zoo import registry

    rows = [("mlp", _summary(zoo.mlp.__doc__)), ("cnn", _summary(zoo.cnn.__doc__))]
    for name in zoo.list_models():
        variant = registry._variant(name)
        rows.append((name, f"{_summary(variant.fn.__doc__)} ({variant.builder})"))
    return rows


def _datasets() -> list[tuple[str, str]]:
    """The built-in sets with their example shapes, then the other sources."""
    from ablation.data import builtin, sources
    from ablation import data

    rows = []
    for name in data.list_datasets():
        flat, image = BUILTIN_SHAPES[name]
        rows.append((name, f"{builtin.DISPLAY_NAMES.get(name, name)}: examples {flat} (flattened, for MLPs); "
                           f"{image} with flatten = false in [data] (for a convolutional model)"))
    rows += [(n, "keras.datasets (downloaded on first use); examples keep their shape") for n in data.KERAS_DATASETS]
    rows += [("tfds:<name>", "tensorflow_datasets" + ("" if sources.tfds_installed() else " (not installed)")),
             ("your file", '[data] path = "file.npz" | ".csv" | ".parquet" (docs/own-model.md)')]
    return rows


def _studies() -> list[tuple[str, str]]:
    """Each bundled study's name, its profiles and the first sentence of its description (read, not run)."""
    from ablation import spec

    rows = []
    for name in spec.list_studies():
        doc = _study_doc(spec.find_study(name))
        if doc is None:
            rows.append((name, "(unreadable study file)"))
            continue
        profiles = _profiles(doc)
        study = doc.get("study") if isinstance(doc.get("study"), dict) else {}
        about = _summary(str(study.get("description", "")))
        rows.append((name, f"[profiles: {', '.join(profiles) or 'none'}] {about}"))
    return rows


def _cmd_worker(args: argparse.Namespace) -> int:
    from ablation.engine import cluster, runner

    s = _load_spec(args)
    try:
        return runner.work(s, args.out, args.chief, tuner_id=args.tuner_id, threads=args.threads, cpus=args.cpus,
                           pack_size=args.pack_size, chief_timeout=args.chief_timeout, recycle_mib=args.recycle_mib,
                           token=args.token)
    except OSError as exc:  # the run folder refuses writes: a replacement worker would fail the same way
        if exc.errno not in cluster.FATAL_ERRNOS:
            raise
        print(f"error: {exc.strerror}" + (f" writing {exc.filename}" if exc.filename else ""), file=sys.stderr)
        return cluster.EXIT_FATAL


def _cmd_chief(args: argparse.Namespace) -> int:
    from ablation.engine import runner

    runner.serve_chief(_load_spec(args), args.out, args.port, args.host, overrides=_overrides(args),
                       command=_command(), token=args.token, heartbeat_grace=args.heartbeat_grace,
                       backend_rule=_backend_rule(args))
    return 0


def _command() -> str:
    """This process's command line as run.json records it (and the report shows it): no token in it."""
    from ablation.engine import auth

    return "ablation " + " ".join(shlex.quote(a) for a in auth.redact(sys.argv[1:]))


def _is_user_error(exc: Exception) -> bool:
    """Bad input (a study file, an argument, a path), as opposed to a bug in the package."""
    from ablation.base.files import FolderLocked
    from ablation.stats.records import RunFolderError
    from ablation.spec import SpecError

    text = str(exc)
    return (isinstance(exc, (SpecError, RunFolderError, FolderLocked, FileNotFoundError, NotADirectoryError))
            or text.startswith("Invalid value for argument") or " is read-only: give the report" in text
            or (text.startswith("cannot write ") and "give the report another path" in text))


def _choose_backend(args: argparse.Namespace) -> None:
    """Set the Keras backend before anything imports Keras (and, under JAX, a worker's threads): the
    --backend flag, else KERAS_BACKEND, else the study's own ``[study] backend``, else the default."""
    from ablation.base import backend

    wanted = getattr(args, "backend", None)
    if wanted is None and not os.environ.get("KERAS_BACKEND") and getattr(args, "study", None):
        from ablation.spec import SpecError
        from ablation.spec.parse import find_study, pinned_backend

        try:  # a study may pin its backend ([study] backend); a bad path is reported by the command itself
            wanted = pinned_backend(find_study(args.study), getattr(args, "profile", None))
        except SpecError:
            wanted = None
    # Nothing named (and Keras not already imported by a caller): `ablation run` picks its workers' backend
    # per study (ablation.engine.backend_choice); this process runs the checks on the default.
    args.backend_rule = (args.command in ("run", "chief") and wanted is None and not os.environ.get("KERAS_BACKEND")
                         and "keras" not in sys.modules)
    name = backend.choose(wanted)
    threads = getattr(args, "threads", None)
    if name == "jax" and threads and "jax" not in sys.modules:
        from ablation.base.backend import jax_threads

        jax_threads(threads)


def spare() -> int:
    """A local worker started before its arguments exist (``ablation.engine.cluster.Spare``): import the
    backend (KERAS_BACKEND), Keras, keras-tuner, the runner and the study reader now, while the chief checks
    the study; then read one JSON line ``{"argv": [...], "env": {...}}`` from stdin and run that ``ablation
    worker`` command in this process. End of input (the chief needed no spare) ends it with status 0."""
    from ablation.base import backend

    backend.choose()
    backend.start()
    from ablation.engine import cluster, runner, tuner  # noqa: F401 - the imports are what a spare is for
    from ablation import spec  # noqa: F401

    line = sys.stdin.readline()
    if not line.strip():
        return 0
    from ablation.base import phases

    phases.restart_clock()  # its start-up, as a worker's, counts from here: the imports before overlapped the checks
    order = json.loads(line)
    os.environ.update(order["env"])
    return main(order["argv"])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ablation`` console script; returns the exit status."""
    from ablation.engine.cluster import SPARE_FLAG

    if argv is None:  # this process's own command (the console script, ``python -m``, a worker), not a caller's
        _quick_exit()

    if (sys.argv[1:] if argv is None else argv) == [SPARE_FLAG]:
        return spare()
    args = _parser().parse_args(argv)
    if args.command == "run" and not args.until_decided and (args.max_seeds or args.seeds_per_look) is not None:
        print("error: --max-seeds and --seeds-per-look go with --until-decided", file=sys.stderr)
        return EXIT_USAGE
    for name in ("workers", "pack_size", "threads", "max_seeds", "seeds_per_look"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            print(f"error: argument --{name.replace('_', '-')}: expected a positive integer. Received: {value}",
                  file=sys.stderr)
            return EXIT_USAGE
    for name in ("chief_timeout", "recycle_mib", "heartbeat_grace"):
        value = getattr(args, name, None)
        if value is not None and not (value > 0 and value != float("inf")):
            print(f"error: argument --{name.replace('_', '-')}: expected a positive number. Received: {value:g}",
                  file=sys.stderr)
            return EXIT_USAGE
    port = getattr(args, "port", None)
    if port is not None and not 0 <= port <= 65535:
        print(f"error: argument --port: expected an integer in [0, 65535]. Received: {port}", file=sys.stderr)
        return EXIT_USAGE
    try:
        _choose_backend(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from ablation.base import backend

    backend.start()  # the backend's start-up lines stay off the terminal
    handler = {"run": _cmd_run, "report": _cmd_report, "list": _cmd_list, "worker": _cmd_worker,
               "chief": _cmd_chief, "components": _cmd_components, "ablate": _cmd_ablate}[args.command]
    previous = None
    if args.command in ("run", "chief"):  # `kill PID` ends a run like Ctrl-C: workers stopped, run.json updated
        previous = signal.signal(signal.SIGTERM, _interrupt)
    from ablation.engine.cluster import ChiefLost, RunFailed
    from ablation.base.files import FolderLocked

    try:
        return handler(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, FolderLocked) as exc:
        if not _is_user_error(exc):
            raise  # a bug, not bad input: keep the traceback
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (RunFailed, ChiefLost) as exc:
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@functools.cache  # once per process
def _quick_exit() -> None:
    """Skip the interpreter's last garbage collections when this process ends.

    At exit Python collects every object the imports made (Keras, JAX or TensorFlow, keras-tuner: some
    200,000): 0.6-0.7 s per process on this project's 2-core machine, paid by ``--dry-run``, by every command
    and by each worker, whose exit the chief waits for; 0.07 s once they are frozen (``gc.freeze()`` as an
    exit handler). The other exit handlers (logging, weakref finalizers, JAX's) still run, and files are
    closed as their modules are cleared, as without it.
    """
    atexit.register(gc.freeze)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
