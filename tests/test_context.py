"""Context documents: read and bounded (files, folders, globs, PDF), shown to seats with line
numbers or, past a seat's budget, as the passages its own focus retrieves; citations checked
after each turn and marked in the transcript, the run's metadata, the web page and the meter's
grounding shares."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest

from council import Council
from council.base.errors import SourceError
from council.engine import grounding
from council.engine.grounding import Grounding
from council.meter.embedders import FakeEmbedder, embedder_available
from council.records.run import RunResult
from council.seats import ModelRequest
from council.testing import FakeProvider, FunctionModel, well_formed_reply
from council.text import documents
from council.text.documents import ContextError, read_context

DESIGN = """# Cache design

The cache holds 512 entries.
Eviction is least recently used.

## Risks
Cold starts take three seconds.
"""


@pytest.fixture
def design(tmp_path: Path) -> Path:
    path = tmp_path / "design.md"
    path.write_text(DESIGN, encoding="utf-8")
    return path


def convene(reply, context, **kwargs) -> RunResult:  # type: ignore[no-untyped-def]
    kwargs.setdefault("runs_dir", None)
    council = Council(
        kwargs.pop("personas", ["popper", "kuhn"]),
        protocol="quick",
        model=FunctionModel(reply),
        similarity=kwargs.pop("similarity", "words"),
        context=context,
        **kwargs,
    )
    return council.convene("Should we ship the cache?")


# -- reading and bounds -----------------------------------------------------------------------


def test_a_document_is_numbered_hashed_and_measured(design: Path) -> None:
    [doc] = read_context([design])
    assert doc.id == "D1" and doc.info.lines == 7 and doc.info.bytes == len(DESIGN.encode())
    assert doc.info.sha256 == hashlib.sha256(DESIGN.encode()).hexdigest()
    assert (
        doc.numbered(3, 4) == "3| The cache holds 512 entries.\n4| Eviction is least recently used."
    )


def test_a_folder_and_a_glob_name_their_files_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.csv").write_text("a,b\n1,2\n")
    (folder / "a.json").write_text('{"x": 1}\n')
    (folder / "sub" / "c.py").write_text("print('hi')\n")
    (folder / ".hidden").write_text("secret\n")
    found = read_context([folder])
    assert [Path(d.info.path).name for d in found] == ["a.json", "b.csv", "c.py"]
    assert [d.id for d in found] == ["D1", "D2", "D3"]
    globbed = read_context([str(folder / "**" / "*.py"), str(folder / "*.csv")])
    assert [Path(d.info.path).name for d in globbed] == ["c.py", "b.csv"]
    with pytest.raises(ContextError, match=r"no file matches this context pattern"):
        read_context([str(folder / "*.pdf")])
    with pytest.raises(ContextError, match=r"missing\.md: no such context document"):
        read_context([tmp_path / "missing.md"])


def test_each_bound_is_refused_in_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in "abc":
        (tmp_path / f"{name}.txt").write_text(name * 100)
    monkeypatch.setattr(documents, "MAX_DOCUMENTS", 2)
    with pytest.raises(ContextError, match=r"c\.txt: more than 2 context documents"):
        read_context([tmp_path])
    monkeypatch.setattr(documents, "MAX_DOCUMENTS", 64)
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 50)
    with pytest.raises(ContextError, match=r"a\.txt: context document is larger than"):
        read_context([tmp_path / "a.txt"])
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 1000)
    monkeypatch.setattr(documents, "MAX_TOTAL_BYTES", 250)
    with pytest.raises(ContextError, match=r"c\.txt: context documents together exceed") as err:
        read_context([tmp_path])
    assert "\n" not in str(err.value)


def test_binary_and_unreadable_files_are_refused_by_name(tmp_path: Path) -> None:
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\x01\x02ELF" * 10)
    with pytest.raises(ContextError, match=r"model\.bin: binary file, not text"):
        read_context([binary])
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ContextError, match=r"latin\.txt: binary file"):
        read_context([latin])
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.md"
        locked.write_text("x")
        locked.chmod(0)
        with pytest.raises(ContextError, match=r"locked\.md: cannot read context document"):
            read_context([locked])


def _pdf(path: Path, pages: int) -> Path:
    import pypdf

    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    with path.open("wb") as handle:
        writer.write(handle)
    return path


@pytest.mark.skipif(importlib.util.find_spec("pypdf") is None, reason="the pdf extra")
def test_a_pdf_is_read_by_pages_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [doc] = read_context([_pdf(tmp_path / "report.pdf", 3)])
    assert doc.info.pages == 3
    monkeypatch.setattr(documents, "MAX_PDF_PAGES", 2)
    with pytest.raises(ContextError, match=r"report\.pdf: PDF has 3 pages, more than 2"):
        read_context([tmp_path / "report.pdf"])
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(ContextError, match=r"broken\.pdf: cannot read PDF"):
        read_context([tmp_path / "broken.pdf"])


def test_a_pdf_without_pypdf_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4\n")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pypdf" else real(name, *a)
    )
    with pytest.raises(ContextError, match=r"report\.pdf: a PDF needs pypdf: .*\[pdf\]"):
        read_context([tmp_path / "report.pdf"])


def test_a_bad_document_stops_the_council_before_any_call(tmp_path: Path) -> None:
    calls: list[ModelRequest] = []
    with pytest.raises(SourceError, match="no such context document"):
        convene(lambda r: calls.append(r) or "x", [tmp_path / "nope.md"])
    assert calls == []


# -- citations --------------------------------------------------------------------------------


def test_citations_are_checked_against_the_documents(design: Path) -> None:
    grounding = Grounding(read_context([design]))
    text = (
        'It holds 512 [D1:3] "holds   512\nentries". Eviction [D1:3-4]. '
        "Wrong doc [D2:1]. Too far [D1:6-9]. Backwards [D1:4-3]. "
        'Misquoted [D1:7] "warm starts". Numbered quote [D1:3-4] "3| The cache holds".'
    )
    notes = [c.note for c in grounding.check(text)]
    assert notes == [
        "[D1:3]",
        "[D1:3-4]",
        "[D2:1] unsupported (no document D2)",
        "[D1:6-9] unsupported (lines 6-9 outside D1's 7 lines)",
        "[D1:4-3] unsupported (lines 4-3 outside D1's 7 lines)",
        "[D1:7] unsupported (the quote is not in D1:7-7)",
        "[D1:3-4]",
    ]


def _citing(request: ModelRequest) -> str:
    if request.seat == "popper":
        return well_formed_reply(request) + ' Bounded [D1:3] "holds 512 entries".'
    if request.seat == "kuhn":
        return well_formed_reply(request) + " Per [D1:40] and [D5:1]."
    return well_formed_reply(request)


def test_a_run_marks_unsupported_citations_everywhere(design: Path, tmp_path: Path) -> None:
    result = convene(_citing, [design], runs_dir=tmp_path / "runs")
    assert result.status == "completed", result.error
    popper = next(t for t in result.turns if t.seat == "popper")
    kuhn = next(t for t in result.turns if t.seat == "kuhn")
    assert [c.valid for c in popper.citations] == [True]
    assert [c.problem for c in kuhn.citations] == ["line 40 outside D1's 7 lines", "no document D5"]
    # What each seat was shown is on its turn, and in its prompt with line numbers.
    assert [p.label for p in popper.shown] == ["D1:1-7"]
    assert popper.request is not None
    prompt = popper.request.messages[1]["content"]
    assert "3| The cache holds 512 entries." in prompt and "[D2:14-20]" in prompt
    metadata = result.metadata
    assert metadata is not None and metadata.unsupported_citations == 2
    assert metadata.citations == 3
    transcript = result.transcript()
    assert "Citations (2 cited, 2 unsupported): [D1:40] unsupported (line 40" in transcript
    assert "Citations (1 cited): [D1:3]" in transcript
    # The chair is asked which claims rest on evidence, told which citations failed.
    verdict = next(t for t in result.turns if t.seat == "chair")
    assert verdict.request is not None
    asked = verdict.request.messages[1]["content"]
    assert "rest on cited evidence" in asked and "- kuhn: [D5:1] unsupported" in asked


def test_the_ledger_records_each_document_by_hash_and_size(design: Path, tmp_path: Path) -> None:
    from council.store.loader import load_run

    result = convene(_citing, [design], runs_dir=tmp_path / "runs")
    again = load_run(result.run_id, tmp_path / "runs")
    [info] = again.documents
    assert info.sha256 == hashlib.sha256(DESIGN.encode()).hexdigest()
    assert (info.bytes, info.lines, info.path) == (len(DESIGN.encode()), 7, str(design))
    assert again.turns[0].citations == result.turns[0].citations
    assert again.config is not None and again.config.spec.context == [str(design)]


# -- retrieval --------------------------------------------------------------------------------

FILLER = "The committee met and agreed the agenda."
FALSIFY = "Refute the claim by a falsifiable test and observation."
LOOPS = "Feedback loops, stocks and flows, delays, leverage points."
LINES = grounding.CHUNK_LINES  # each chunk is this many of these short lines
REFUTING, LOOPING = f"D1:{20 * LINES + 1}-{21 * LINES}", f"D1:{26 * LINES + 1}-{27 * LINES}"


def _big(tmp_path: Path) -> Path:
    """A document past the budget: filler, with one chunk on refutation, one on loops."""
    lines = [f"{FILLER} ({n})" for n in range(1, LINES * 30 + 1)]
    lines[LINES * 20 : LINES * 21] = [FALSIFY] * LINES
    lines[LINES * 26 : LINES * 27] = [LOOPS] * LINES
    path = tmp_path / "minutes.md"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("similarity", ["words", "embedding"])
def test_seats_with_different_focus_are_shown_different_passages(
    tmp_path: Path, similarity: str
) -> None:
    if similarity == "embedding" and not embedder_available():
        pytest.skip("the bundled embedder is not installed")
    from council import SamplingSettings

    # Replies of up to 7,800 tokens leave a window of 8,192 (a model no map knows) room for
    # about one chunk of documents: each seat is shown the one its own focus ranks first.
    result = convene(
        well_formed_reply,
        [_big(tmp_path)],
        personas=["popper", "meadows"],
        similarity=similarity,
        sampling=SamplingSettings(max_tokens=7_800),
    )
    assert result.status == "completed", result.error
    shown = {t.seat: {p.label for p in t.shown} for t in result.turns if t.stage == "opening"}
    assert shown == {"popper": {REFUTING}, "meadows": {LOOPING}}
    popper = next(t for t in result.turns if t.seat == "popper" and t.stage == "opening")
    assert popper.request is not None
    assert f"{20 * LINES + 1}| {FALSIFY}" in popper.request.messages[1]["content"]


def test_chunk_vectors_are_kept_by_content_hash(tmp_path: Path) -> None:
    from council.app.grounding import EmbeddingRetriever

    embedder = FakeEmbedder(dimension=48)  # a name of its own: nothing kept from other tests
    retriever = EmbeddingRetriever(lambda: embedder.encode, embedder.name)
    texts = ["alpha beta", "gamma delta", "epsilon"]
    first = retriever.scores("alpha", texts)
    assert retriever.embedded == 3 and first[0] == max(first)
    retriever.scores("gamma", [*texts, "zeta"])
    assert retriever.embedded == 4  # only the new chunk was embedded


# -- surfaces ---------------------------------------------------------------------------------


def test_context_is_one_spec_field_on_every_surface(design: Path) -> None:
    from council.records.options import options
    from council.records.spec import CouncilSpec

    for surface in ("cli", "mcp", "web"):
        assert "context" in {o.key for o in options(surface)}, surface
    spec = CouncilSpec.model_validate({"context": f"{design}, {design}"})
    assert spec.context == [str(design), str(design)]
    council = Council.from_spec(spec, runs_dir=None)
    assert [d.id for d in council.documents] == ["D1"]  # named twice, read once
    assert council.resolved_spec().context == [str(design), str(design)]


def test_convene_on_the_command_line_with_context(
    design: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from council.cli.main import main

    monkeypatch.chdir(tmp_path)
    reply = 'Reply long enough to measure, citing [D1:3] "512 entries" and [D1:99].'
    with FakeProvider(reply) as fake:
        argv = ["convene", "Ship the cache?", "--protocol", "quick", "--personas", "popper,kuhn"]
        argv += ["--model", "openai/fake", "--endpoint", f"openai/fake={fake.api_base}"]
        argv += ["--similarity", "words", "--json", "--quiet"]
        argv += ["--context", str(design), str(design)]
        assert main(argv) == 0
        sent = [m["content"] for body in fake.requests for m in body["messages"]]
    run = json.loads(capsys.readouterr().out)
    assert any("3| The cache holds 512 entries." in text for text in sent)
    assert run["metadata"]["unsupported_citations"] == run["metadata"]["citations"] / 2
    assert main(["convene", "Q?", "--context", str(tmp_path / "gone.md")]) != 0
    assert "gone.md: no such context document" in capsys.readouterr().err


def test_the_web_run_page_marks_unsupported_citations(design: Path, tmp_path: Path) -> None:
    from test_web import Server

    from council.web.settings import ServerSettings

    result = convene(_citing, [design], runs_dir=tmp_path / "runs")
    server = Server(ServerSettings(runs_dir=tmp_path / "runs"))
    try:
        status, page = server.request(f"/runs/{result.run_id}")
    finally:
        server.stop()
    assert status == 200
    assert "<p class='citations unsupported'>Citations (2 cited, 2 unsupported)" in page
    assert "[D5:1] unsupported (no document D5)" in page
    assert "<p class='citations'>Citations (1 cited): [D1:3]</p>" in page


REPO = Path(__file__).resolve().parent.parent


def test_readme_document_examples_run(
    local_model_on_fake_provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from test_readme import python_blocks, section, shell_commands

    from council.cli.main import main

    monkeypatch.chdir(REPO)  # the examples name docs/install.md
    text = section(REPO / "README.md", "## Convening on a document")
    [code] = [block for block in python_blocks(REPO / "README.md") if "context=" in block]
    exec(compile(code, "README.md", "exec"), {})
    assert "unsupported" in capsys.readouterr().out
    [command] = shell_commands(text)
    assert command[:2] == ["council", "convene"] and "--context" in command
    assert main(command[1:]) == 0
    sent = [m["content"] for b in local_model_on_fake_provider.requests for m in b["messages"]]
    assert any("[D1] docs/install.md" in content for content in sent)


@pytest.mark.local_model
def test_the_bundled_model_convenes_on_a_markdown_document(design: Path) -> None:
    from council import SamplingSettings

    council = Council(
        ["popper", "kuhn"],
        protocol="quick",
        runs_dir=None,
        similarity="words",
        context=[design],
        sampling=SamplingSettings(max_tokens=120, seed=7),
    )
    result = council.convene("Should we ship the cache as designed?")
    assert result.status == "completed", result.error
    assert [d.lines for d in result.documents] == [7]
    for turn in result.turns:
        assert turn.request is not None and turn.shown
        assert "3| The cache holds 512 entries." in turn.request.messages[1]["content"]
    # What a 135M model cites is its own affair; whatever it cites is checked and counted.
    assert result.metadata is not None
    counted = sum(len(t.citations) for t in result.turns)
    assert result.metadata.citations == counted


def test_servers_read_documents_only_in_the_operators_folder(design: Path, tmp_path: Path) -> None:
    from council.base.errors import ConfigError
    from council.mcp_server.convening import Convener, ConveneRequest
    from council.mcp_server.requests import ServerSettings
    from council.text.documents import confined

    with pytest.raises(ConfigError, match="this server reads no documents"):
        confined(["design.md"], None)
    for escape in ("/etc/passwd", "../design.md", "a/../../x"):
        with pytest.raises(ConfigError, match="inside the server's context folder"):
            confined([escape], tmp_path / "shared")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "out.md").symlink_to(design)
    with pytest.raises(ConfigError, match="'out.md' leads outside"):
        confined(["out.md"], shared)
    (shared / "notes.md").write_text("in\n")
    # A glob or a folder is expanded here, each match resolved: the link among them is refused.
    for pattern in ("*.md", "."):
        with pytest.raises(ConfigError, match="'out.md' leads outside"):
            confined([pattern], shared)
    (shared / "out.md").unlink()
    assert confined(["notes.md", "*.md", "."], shared) == [str(shared.resolve() / "notes.md")]
    # The MCP convene tool (the web form's request goes through the same check).
    asked = ConveneRequest(question="Q?", options={"context": ["notes.md"]})
    spec = Convener(ServerSettings(runs_dir=tmp_path, context_dir=shared)).spec(asked)
    assert spec.context == [str(shared.resolve() / "notes.md")]
    with pytest.raises(ConfigError, match="start it with --context-dir"):
        Convener(ServerSettings(runs_dir=tmp_path)).spec(asked)


def test_the_web_form_sends_context_as_a_list_read_in_the_operators_folder(
    design: Path, tmp_path: Path
) -> None:
    from test_web import Server

    from council.web.settings import ServerSettings

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "design.md").write_text(DESIGN)
    with FakeProvider("Bounded, long enough reply [D1:3].") as fake:
        settings = ServerSettings(
            runs_dir=tmp_path / "runs",
            endpoints={"openai/fake": fake.api_base},
            default_model="openai/fake",
            context_dir=shared,
        )
        server = Server(settings)
        try:
            _, form = server.request("/")
            asked = {"question": "Ship it?", "protocol": "quick", "personas": ["popper", "kuhn"]}
            status, text = server.request("/api/convene", asked | {"context": ["design.md"]})
            refused = server.request("/api/convene", asked | {"context": ["/etc/passwd"]})
        finally:
            server.stop()
    assert "id='option-context'" in form and "data-option='list'" in form
    assert status == 200, text
    assert refused[0] >= 400 and "inside the server's context folder" in refused[1]


def test_the_meter_reports_each_seats_grounding_share(design: Path) -> None:
    from council.meter.analysis import analyse_run
    from council.reports.table import run_table

    result = convene(_citing, [design])
    report = analyse_run(result, FakeEmbedder())
    shares = {g.seat: g for g in report.grounding}
    popper, kuhn = shares["popper"], shares["kuhn"]
    assert (popper.citations, popper.valid, popper.valid_share) == (popper.turns, popper.turns, 1.0)
    assert popper.grounded_turn_share == 1.0
    assert (kuhn.valid_share, kuhn.grounded_turn_share) == (0.0, 0.0)
    assert shares["chair"].valid_share is None  # it cited nothing
    assert "Grounding in the context documents" in run_table(report)
    assert "grounding" not in analyse_run(convene(_citing, []), FakeEmbedder()).to_json()


def test_a_replay_reads_the_documents_again_and_reuses_identical_calls(
    design: Path, tmp_path: Path
) -> None:
    from council.app.resume import replay

    runs = tmp_path / "runs"
    reply = 'A reply long enough to measure, citing [D1:3] "holds 512 entries".'
    with FakeProvider(reply) as fake:
        council = Council(
            ["popper", "kuhn"],
            protocol="quick",
            model="openai/fake",
            endpoints={"openai/fake": fake.api_base},
            similarity="words",
            context=[design],
            runs_dir=runs,
        )
        first = council.convene("Should we ship the cache?")
        calls = fake.request_count
        again = replay(first.run_id, runs)
        assert fake.request_count == calls  # every prompt the same: every answer reused
        design.write_text(DESIGN.replace("512", "1024"))  # the document changed since
        changed = replay(first.run_id, runs)
        assert fake.request_count > calls  # its prompts changed with it: asked again
    assert again.documents == first.documents and all(t.reused for t in again.turns)
    assert [t.citations for t in again.turns] == [t.citations for t in first.turns]
    assert changed.documents[0].sha256 != first.documents[0].sha256
    assert not changed.turns[0].citations[0].valid  # "holds 512 entries" is no longer there
