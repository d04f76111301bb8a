"""The project's layers, checked from the source. The generic core (``pipeline`` but its NAS
domain ``pipeline.nas``) names no paper, model, benchmark or data set; the core imports no
paper (``trainables``) and no analysis; ``analysis`` reads results only and never imports
a paper; no import cycles. Imports inside functions count."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
PACKAGES = ("pipeline", "trainables", "analysis")
# Words the generic core must not contain (code, strings and comments, any case): papers,
# their models, benchmarks, data sets and metrics. The NAS domain (pipeline/nas) and the
# papers' own packages are where they live.
PAPER_WORDS = (
    "trainables", "infonas", "info-nas", "io_embedding", "io-embedding", "arch2vec", "molgan",
    "nasbench", "nas-bench", "natsbench", "nats-bench", "cifar", "imagenet", "mean_acc",
    "coverage", "valuer", "discriminator",
)  # fmt: skip


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``path`` imports anywhere in its body (functions included)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_pkg else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _imports_between(importer: str, imported: tuple[str, ...]) -> list[tuple[str, str]]:
    """(module, dependency) pairs where a module of package ``importer`` imports one of
    the packages ``imported``."""
    return sorted(
        (mod, dep)
        for mod, deps in _graph().items()
        if mod.split(".")[0] == importer
        for dep in deps
        if dep.split(".")[0] in imported
    )


def test_the_core_never_imports_an_experiment_or_the_analysis():
    bad = _imports_between("pipeline", ("trainables", "analysis"))
    assert not bad, sorted(bad)


def test_no_import_cycle_among_the_project_modules():
    graph = _graph()
    # a package imports its own submodules when they load (``import a.b`` runs ``a``
    # first), so an edge into an ancestor package is a real edge too: keep them all.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, " -> ".join(cycle)


def test_the_generic_core_names_no_paper_model_benchmark_or_data_set():
    import io
    import tokenize

    found = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        if (ROOT / "pipeline" / "nas") in path.parents:
            continue
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            text = tok.string.lower()
            for word in PAPER_WORDS:
                if word in text:
                    found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {word}")
    assert not found, "\n".join(found)


def test_analysis_never_imports_a_paper():
    bad = _imports_between("analysis", ("trainables",))
    assert not bad, bad


def test_scanner_sees_imports_inside_functions():
    graph = _graph()
    # pipeline.sweep.worker imports the registry inside tune_entry only
    assert "pipeline.experiment" in graph["pipeline.sweep.worker"]


def test_two_experiments_are_registered_as_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="gnn2gnn.experiments")}
    assert {"gnn2gnn", "infonas"} <= names
