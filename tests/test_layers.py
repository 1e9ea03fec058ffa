"""The folder tree reads as the pipeline: every import in council/ respects the layer order
written in docs/architecture.md, and no modules import each other in a cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "council"


def layer_order() -> list[tuple[str, list[str]]]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"```layers\n(.*?)```", text, re.DOTALL)
    assert block, "docs/architecture.md has no ```layers block"
    layers = []
    for line in block.group(1).strip().splitlines():
        name, _, modules = line.partition(":")
        layers.append((name.strip(), modules.split()))
    return layers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every council module this file imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            # "from council.app import voices" imports the module council.app.voices
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return [(name, line) for name, line in found if name.split(".")[0] == "council"]


def existing_module(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def layer_of(module: str, layers: list[tuple[str, list[str]]]) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank >= 0, f"{module} belongs to no layer in docs/architecture.md"
    return rank


def import_graph() -> tuple[nx.DiGraph, dict[tuple[str, str], tuple[Path, int]]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: nx.DiGraph = nx.DiGraph()
    where: dict[tuple[str, str], tuple[Path, int]] = {}
    for module, path in files.items():
        graph.add_node(module)
        for imported, line in imports_of(path):
            target = existing_module(imported, set(files))
            if target and target != module and not module.startswith(target + "."):
                graph.add_edge(module, target)
                where.setdefault((module, target), (path, line))
    return graph, where


def test_every_module_belongs_to_a_layer() -> None:
    layers = layer_order()
    for module in import_graph()[0]:
        layer_of(module, layers)


def test_no_import_runs_back_up_the_layers() -> None:
    layers = layer_order()
    graph, where = import_graph()
    upward = []
    for module, target in graph.edges:
        if layer_of(target, layers) > layer_of(module, layers):
            path, line = where[(module, target)]
            upward.append(
                f"{path.relative_to(ROOT)}:{line}: {module} ({layers[layer_of(module, layers)][0]})"
                f" imports {target} ({layers[layer_of(target, layers)][0]})"
            )
    assert upward == []


def test_no_modules_import_each_other_in_a_cycle() -> None:
    graph, _ = import_graph()
    assert sorted(sorted(cycle) for cycle in nx.simple_cycles(graph)) == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from council.app.council import Council\n")
    assert imports_of(source) == [("council.app.council", 2), ("council.app.council.Council", 2)]
    layers = layer_order()
    assert layer_of("council.app.council", layers) > layer_of("council.engine", layers)


def test_the_architecture_page_shows_the_pipeline_in_layer_order() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = page.split("## The folders", 1)[1].split("\n## ", 1)[0]
    folders = re.findall(r"^[│├└─ ]+(\w+)/", section, re.MULTILINE)
    layers = layer_order()
    ranks = [layer_of(f"council.{folder}", layers) for folder in folders]
    assert len(folders) >= 8 and ranks == sorted(ranks)
    # Every package of council is on the page, and every layer but the facade is a folder.
    packages = {p.parent.name for p in (ROOT / "council").glob("*/__init__.py")}
    assert set(folders) == packages, packages ^ set(folders)
    loose = {p.stem for p in (ROOT / "council").glob("*.py")} - {"__init__", "__main__"}
    assert not loose, f"modules outside a layer's folder: {sorted(loose)}"
