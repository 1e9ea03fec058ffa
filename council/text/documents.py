"""Reading context documents: the files a council is given as evidence (``--context``).

Paths may name files, folders (every file under them, hidden ones skipped, in name order) and
globs (``docs/**/*.md``). Text of any kind is read as UTF-8 (Markdown, code, CSV, JSON, plain
text); a PDF's text is read page by page through ``pypdf`` (the ``pdf`` extra). Each document
is bounded, and so is the whole: every refusal is one line naming the file. A document's lines
are what citations count (``[D2:14-20]``), numbered from 1.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from council.base.errors import ConfigError, SourceError
from council.records.grounding import DocumentInfo
from council.text.sourcefile import one_line, read_bytes

MAX_DOCUMENTS = 64
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # one file, as stored (a PDF's bytes, not its text)
MAX_TOTAL_BYTES = 16 * 1024 * 1024  # every document together
MAX_PDF_PAGES = 300
_GLOB = set("*?[")
# Control characters other than tab, line breaks and form feed mark a file that is not text
# even when it decodes (an executable padded with zeros decodes as UTF-8).
_BINARY = {chr(c) for c in range(32) if chr(c) not in "\t\n\r\f"}


class ContextError(SourceError):
    """A context document that cannot be read or is past a bound; names the file."""


@dataclass(frozen=True)
class ContextDocument:
    """A document as seats read it: its record and its lines (numbered from 1)."""

    info: DocumentInfo
    lines: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.info.id

    def numbered(self, start: int = 1, end: int | None = None) -> str:
        """Lines ``start``..``end`` each after its number: ``14| text``."""
        last = len(self.lines) if end is None else min(end, len(self.lines))
        return "\n".join(f"{n}| {self.lines[n - 1]}" for n in range(max(start, 1), last + 1))


def read_context(paths: Sequence[str | Path]) -> list[ContextDocument]:
    """Every document ``paths`` name, ids D1.. in order; a file named twice is read once."""
    files = list(dict.fromkeys(f for given in paths for f in _expand(str(given))))
    if len(files) > MAX_DOCUMENTS:
        raise ContextError(
            files[MAX_DOCUMENTS], f"more than {MAX_DOCUMENTS} context documents: name fewer"
        )
    documents: list[ContextDocument] = []
    total = 0
    for number, path in enumerate(files, 1):
        document = read_document(path, f"D{number}")
        total += document.info.bytes
        if total > MAX_TOTAL_BYTES:
            limit = MAX_TOTAL_BYTES // 1024 // 1024
            raise ContextError(path, f"context documents together exceed {limit} MiB")
        documents.append(document)
    return documents


def _expand(given: str) -> list[Path]:
    """The files one path names: itself, a folder's files, or a glob's matches."""
    if _GLOB & set(given):
        matches = sorted(Path(m) for m in glob.glob(given, recursive=True))
        files = [m for m in matches if m.is_file()]
        if not files:
            raise ContextError(given, "no file matches this context pattern")
        return files
    path = Path(given)
    if path.is_dir():
        files = sorted(
            f
            for f in path.rglob("*")
            if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts)
        )
        if not files:
            raise ContextError(path, "the context folder holds no files")
        return files
    if not path.exists():
        raise ContextError(path, "no such context document")
    return [path]


def read_document(path: Path, doc_id: str) -> ContextDocument:
    """One document, or a ``ContextError`` naming it: unreadable, binary, too big."""
    data = read_bytes(path, ContextError, MAX_DOCUMENT_BYTES, what="context document", not_a=None)
    pages: int | None = None
    if data.startswith(b"%PDF-"):
        text, pages = _pdf_text(path, data)
    else:
        text = _plain_text(path, data)
    lines = tuple(text.splitlines())
    info = DocumentInfo(
        id=doc_id,
        path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        lines=len(lines),
        pages=pages,
    )
    return ContextDocument(info, lines)


def _plain_text(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ContextError(path, "binary file, not text: not a context document") from None
    if _BINARY & set(text):
        raise ContextError(path, "binary file, not text: not a context document")
    return text


def _pdf_text(path: Path, data: bytes) -> tuple[str, int]:
    """A PDF's text, page after page, and its page count."""
    if importlib.util.find_spec("pypdf") is None:
        raise ContextError(
            path, "a PDF needs pypdf: pip install 'persona-council[pdf]' (the pdf extra)"
        )
    import io

    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        count = len(reader.pages)
        if count > MAX_PDF_PAGES:
            raise ContextError(path, f"PDF has {count} pages, more than {MAX_PDF_PAGES}")
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
    except ContextError:
        raise
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        why = one_line(f"{type(exc).__name__}: {exc}")[:200]
        raise ContextError(path, f"cannot read PDF: {why}") from None
    return text, count


def confined(paths: Sequence[str], root: Path | None) -> list[str]:
    """Context paths a server's client named, each read inside ``root``, the folder the
    server's operator gave (``--context-dir``): a client names documents there, never any
    other file of the server's. Without a folder, a server reads no documents."""
    if not paths:
        return []
    if root is None:
        raise ConfigError("context: this server reads no documents (start it with --context-dir)")
    base = root.resolve()
    inside: list[str] = []
    for given in paths:
        relative = Path(given)
        if relative.is_absolute() or ".." in relative.parts:
            raise ConfigError(f"context '{given}': name a path inside the server's context folder")
        # Every file a name, folder or glob expands to, resolved: a symlink among a glob's or
        # a folder's matches would otherwise lead a client's read outside the folder.
        for found in _expand(str(base / relative)):
            if not found.resolve().is_relative_to(base):
                shown = found.relative_to(base) if found.is_relative_to(base) else found.name
                raise ConfigError(f"context '{shown}' leads outside the server's context folder")
            inside.append(str(found))
    return list(dict.fromkeys(inside))
