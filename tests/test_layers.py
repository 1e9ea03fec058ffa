"""The folder tree reads as the pipeline: every import in council/ respects the layer order
written in docs/architecture.md, no modules import each other in a cycle, and the page's
package import graph is the one the source has (build-support/import_graph.py reads both)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import networkx as nx

ROOT = Path(__file__).parent.parent


def _reader() -> ModuleType:
    """build-support/import_graph.py: the import reader, shared with the page it writes."""
    spec = importlib.util.spec_from_file_location(
        "import_graph", ROOT / "build-support" / "import_graph.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reader = _reader()
layer_order, imports_of, layer_of = reader.layer_order, reader.imports_of, reader.layer_of
import_graph = reader.import_graph


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


def test_the_architecture_page_shows_the_import_graph_as_the_source_has_it() -> None:
    assert reader.PAGE.read_text(encoding="utf-8") == reader.rendered_page(), (
        "docs/architecture.md's import graph is out of date: run "
        "python build-support/import_graph.py"
    )
    section = reader.render_section()
    assert "0 running back up the layers and 0 package cycles" in section
    # A sibling import is shown in its own column: the command line starts the web app.
    assert "| `cli` | interfaces |" in section and section.count("`web`") >= 2


def test_the_graph_is_package_level_and_marks_siblings() -> None:
    layers = [("base", ["council.base"]), ("interfaces", ["council.cli", "council.web"])]
    edges = [
        ("council.cli.main", "council.web.app"),
        ("council.web.app", "council.web.pages"),  # inside one package: no edge
        ("council.web.app", "council.base.errors"),
    ]
    section = reader.render_section(layers, nx.DiGraph(edges))
    assert "2 package edges, 1 of them between siblings" in section
    assert "| `cli` | interfaces | nothing | `web` |" in section
    assert "| `web` | interfaces | `base` |  |" in section
