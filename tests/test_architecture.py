"""The package's shape, read from its import graph (stdlib `ast`, no import of upres itself):
one-way layers, no import cycle, typer and rich only in the CLI, modules of a readable size.
docs/ARCHITECTURE.md explains the layers; a failure here names the file and the import."""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "upres"

# Lowest first: each layer may import the layers before it and its own package, nothing after it.
# Names in one tuple are siblings: neither may import the other. Names not present (a package
# another branch adds) are simply absent from the graph.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core", "weights", "samples"),  # leaf code; shipped models and the sample (data only)
    ("imageio",),
    ("kernels", "metrics"),  # image ops: OpenCV/numpy definitions, CUDA sources, quality metrics
    ("models",),  # PyTorch definitions and training
    ("export",),  # PyTorch -> ONNX (imports models)
    ("runtime",),  # tiling, planner, blend, chains and their contract, onnxruntime backends
    ("evaluate",),  # PSNR/SSIM of a chain on a folder
    ("degraded_eval",),  # the same on reproducibly degraded inputs (--denoise)
    ("calibration",),  # Q/DQ INT8 and FP16 graphs, measured with the runtime's backends
    ("gpu",),
    ("batch",),
    ("cleaning",),
    ("fleet", "serving"),
    ("api",),
    ("bench", "studio"),
    ("cli",),
    ("__main__",),  # `python -m upres`
)
# Only the CLI talks to the terminal through these: every other module returns plain data.
CLI_ONLY = ("typer", "rich")
MAX_LINES = 450
# Modules over MAX_LINES that are still to be split: this list may only shrink.
LONG_MODULES: set[str] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported name, line) of every import in the file, function-level and TYPE_CHECKING ones
    included (a type checker follows those too); relative imports resolved."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            subs = [f"{origin}.{a.name}" for a in node.names if f"{origin}.{a.name}" in MODULES]
            if len(subs) < len(node.names):
                yield origin, node.lineno
            for sub in subs:
                yield sub, node.lineno


@functools.cache
def _graph() -> dict[str, dict[str, int]]:
    edges: dict[str, dict[str, int]] = defaultdict(dict)
    for module, path in MODULES.items():
        for name, line in _imports(module, path):
            if name in MODULES and name != module:
                edges[module].setdefault(name, line)
    return edges


def _top(module: str) -> str | None:
    """The first name below ``upres`` (its layer key); None for ``upres`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _layer(top: str) -> tuple[int, tuple[str, ...]]:
    for index, names in enumerate(LAYERS):
        if top in names:
            return index, names
    raise AssertionError(f"upres.{top} is in no layer of tests/test_architecture.py's LAYERS "
                         "(and docs/ARCHITECTURE.md): add it where it belongs")


def test_every_package_has_a_layer() -> None:
    for module in MODULES:
        top = _top(module)
        if top is not None:
            _layer(top)


def test_layers_import_only_lower_layers() -> None:
    bad = []
    for module, targets in _graph().items():
        source = _top(module)
        for target, line in targets.items():
            dest = _top(target)
            if source is None or dest is None or dest == source:
                continue  # `upres` itself holds only __version__
            (si, siblings), (di, _) = _layer(source), _layer(dest)
            if di > si or (di == si and dest in siblings):
                bad.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}: {module} imports "
                           f"{target} (layer {dest} is not below {source})")
    assert not bad, "\n".join(bad)


def _cycles(edges: dict[str, dict[str, int]], nodes: list[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_import_cycle() -> None:
    assert not _cycles(_graph(), sorted(MODULES))


def test_no_package_import_cycle() -> None:
    packages: dict[str, dict[str, int]] = defaultdict(dict)
    for module, targets in _graph().items():
        for target in targets:
            a, b = _top(module), _top(target)
            if a and b and a != b:
                packages[f"upres.{a}"][f"upres.{b}"] = 0
    assert not _cycles(packages, sorted(packages.keys() | {t for d in packages.values() for t in d}))


def test_typer_and_rich_only_in_the_cli() -> None:
    bad = []
    for module, path in MODULES.items():
        if _top(module) == "cli":
            continue
        for name, line in _imports(module, path):
            if name.split(".")[0] in CLI_ONLY:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name}")
    assert not bad, "\n".join(bad)


def test_no_module_over_the_line_limit() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    over = {m for m, n in sizes.items() if n > MAX_LINES}
    assert over <= LONG_MODULES, {m: sizes[m] for m in over - LONG_MODULES}
    assert over == LONG_MODULES, f"now short enough, drop from LONG_MODULES: {LONG_MODULES - over}"
