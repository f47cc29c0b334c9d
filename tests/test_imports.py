"""The package's layering: data flows one way (docs/internals.md, section 0), so no module imports one
above it and no import cycle exists, at module level or inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ablation"

# Lowest first: a module may import only modules before it. Keep in step with docs/internals.md.
LAYERS = [
    "base",                                                # one error style, atomic files, the run folder, backends
    "zoo",                                                 # the models; a model's removable parts (zoo.parts)
    "data",                                                # data sets, readers, the task and its scoring
    "train",                                               # optimizers, the scanned step, stopping, probes
    "spec",                                                # study file -> StudySpec; the claims a run registered
    "trials",                                              # a grid point's model, data and metrics; packs
    "stats",                                               # run folder -> long-form frames -> effects, verdicts
    "report",                                              # -> one HTML page
    "engine",                                              # preflight, keras-tuner, workers, progress, runner, API
    "cli", "__main__",                                     # the command line
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING") or (
        isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> set[str]:
    """The ``ablation`` modules a file imports anywhere (functions included, type-checking blocks not)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "ablation")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "ablation":
                out.add(module)
                out.update(f"{module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return out


def _graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    names = {_module_name(p) for p in files}
    graph = {}
    for path in files:
        # keep the longest prefix of each imported name that is a module ("ablation.spec.load" -> "ablation.spec")
        deps = set()
        for imported in _imports(path):
            parts = imported.split(".")
            for k in range(len(parts), 0, -1):
                if ".".join(parts[:k]) in names:
                    deps.add(".".join(parts[:k]))
                    break
        graph[_module_name(path)] = deps - {_module_name(path)}
    return graph


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_has_a_layer():
    tops = {_layer(m) for m in _graph()} - {None}
    assert tops <= set(LAYERS), f"modules without a layer in LAYERS: {sorted(tops - set(LAYERS))}"


def test_no_module_imports_one_above_it():
    rank = {name: i for i, name in enumerate(LAYERS)}
    wrong = []
    for module, deps in _graph().items():
        here = _layer(module)
        if here is None:  # the package itself: its public names may come from anywhere
            continue
        for dep in deps:
            there = _layer(dep)
            if there is not None and there != here and rank[there] > rank[here]:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle_inside_a_package():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if _layer(dep) != _layer(node) or dep == f"ablation.{_layer(node)}":
                continue  # across layers the order above rules cycles out; a package's __init__ re-exports
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]) if dep in path else f"{node} -> {dep}")
            elif dep not in state:
                walk(dep, path + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("module", ["ablation.spec", "ablation.stats.claims", "ablation.train.probes", "ablation.zoo"])
def test_the_checker_sees_imports(module):
    """The checks above would pass on an empty graph: make sure the parser finds real edges."""
    graph = _graph()
    assert module in graph and any(dep.startswith("ablation.") for dep in graph[module])


def test_reading_records_does_not_import_scipy_stats_and_package_names_still_resolve():
    """ablation.stats imports its names on first use: the runner's `from ablation.stats import records`
    (every run, dry runs and workers included) does not pay for SciPy's stats."""
    import subprocess
    import sys

    code = ("import sys\nfrom ablation.stats import records\nprint('scipy.stats' in sys.modules)\n"
            "import ablation.stats as s\nfrom ablation.stats import holm, MAX_POWER_SEEDS\n"
            "assert s.holm is holm and MAX_POWER_SEEDS == s.power.MAX_SEEDS and set(s.__all__) == set(s._NAMES)\n"
            "assert s.components.sentence and s.claims.SEQUENTIAL\n"
            "print('scipy.stats' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True"]
