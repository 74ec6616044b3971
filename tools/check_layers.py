"""Checks embench's layering: no module imports one in a layer above its own, and no import cycle.

    python tools/check_layers.py [ROOT]      # exit 0 when clean; else one line per problem, exit 1

Every import counts, at module level or inside a function. Layers, bottom to top (a module's layer
is that of the longest prefix listed (`embench` alone: its __init__); a module may import its own layer and those below):
"""

import ast
import sys
from pathlib import Path

LAYERS = (
    ("base", ("embench", "embench.errors", "embench.outcome", "embench.signals", "embench.credentials",
              "embench.cache", "embench.names", "embench.phases", "embench.result", "embench.stats", "embench.artifacts",
              "embench.ui_link", "embench.progress", "embench.host", "embench.memory", "embench.gpu",
              "embench.contention", "embench.measure", "embench.profiling", "embench.thermal",
              "embench.sequential")),
    ("config", ("embench.config",)),
    ("parts", ("embench.platform", "embench.models", "embench.energy", "embench.peak", "embench.tracking",
               "embench.backends", "embench.scenarios", "embench.digits", "embench.accuracy")),
    ("checks", ("embench.checks",)),
    ("point", ("embench.point",)),
    ("farms", ("embench.farms",)),
    ("sweep", ("embench.sweep",)),
    ("entry points", ("embench.cli", "embench.__main__", "embench.report", "hydra_plugins.embench_sweeper")),
)
__doc__ += "".join(f"\n    {number} {name}: {', '.join(prefixes)}" for number, (name, prefixes) in enumerate(LAYERS))
PACKAGES = ("embench", "hydra_plugins")


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `path` imports (`from a import b` counts as a.b when a.b is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
    return {name for name in found if name in known}


def layer(module: str) -> int:
    """The layer of the longest listed prefix of `module`; unlisted modules are an error."""
    best, length = None, -1
    for number, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            below = module.startswith(prefix + ".") and prefix not in PACKAGES  # a top package names only its __init__
            if (module == prefix or below) and len(prefix) > length:
                best, length = number, len(prefix)
    if best is None:
        raise KeyError(module)
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def problems(root: Path) -> list[str]:
    known = modules(root)
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    layers = {}
    found = []
    for name in sorted(graph):
        try:
            layers[name] = layer(name)
        except KeyError:
            found.append(f"{name}: in no layer (add it to LAYERS in tools/check_layers.py)")
    for name, mine in layers.items():
        for other in sorted(graph[name]):
            if layers.get(other, -1) > mine:
                found.append(f"{name} ({LAYERS[mine][0]}) imports {other} ({LAYERS[layers[other]][0]}), a layer above it")
    found += [f"import cycle: {' -> '.join(component)}" for component in cycles(graph)]
    return found


def main() -> None:
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(__doc__)
        return
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    found = problems(root)
    for line in found:
        print(line)
    print(f"{len(modules(root))} modules, {len(found)} problem(s)")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
