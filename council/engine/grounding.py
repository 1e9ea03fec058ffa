"""Context documents in a run: what each seat is shown of them, and its citations checked.

Documents that fit a seat's context budget are shown whole. Past it, they are cut into chunks
of lines and each seat, in each stage, is shown the chunks its own query ranks first (the
question, its card's focus and the stage's prompt), so different seats read different
passages. The ranking is a ``Retriever`` handed in by the app (the bundled embedder; the
engine imports no meter); word overlap when none is.

Seats are asked to cite as ``[D2:14-20]``, optionally with a short quote; after each turn
every citation is checked: the document exists, the lines are inside it, the quote (if any)
occurs in those lines with whitespace normalised.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from council.records.grounding import Citation, Passage
from council.seats.capabilities import context_window
from council.text.documents import ContextDocument

CHUNK_LINES = 16  # a retrieved passage: enough lines to hold one argument
# ... cut earlier when its lines are long: the bundled embedder reads 256 tokens of a text
# (all-MiniLM-L6-v2's max_seq_length) and would rank a longer chunk by its opening alone.
CHUNK_CHARS = 1_000
DEFAULT_WINDOW = 8_192  # tokens, for a model no map knows (the bundled model's length)
# A quarter of the window goes to documents: the card, the stage prompt, earlier replies and
# the reply's own cap share the rest (the bundled model's chair already reads ~4.8k tokens).
WINDOW_SHARE = 4
CHARS_PER_TOKEN = 3  # conservative: numbered lines and code tokenize densely
MIN_BUDGET_CHARS = 1_000

CITE_INSTRUCTION = (
    "The documents above are evidence. When a claim rests on them, cite the lines right after "
    'it as [D2:14-20] (or [D2:14]), optionally with a short exact quote: [D2:14-20] "the '
    'words". Cite only what the lines say.'
)
VERDICT_INSTRUCTION = (
    "Say which of the verdict's claims rest on cited evidence (give the citations) and which "
    "rest on argument alone."
)

# [D2:14-20] or [D2:14], then an optional quote in straight or curly double quotes.
_CITATION = re.compile(
    r"\[(D\d+)\s*:\s*(\d+)(?:\s*[-\u2013]\s*(\d+))?\]"
    r"(?:\s*[:,]?\s*[\"\u201c]([^\"\u201d\n]{1,400})[\"\u201d])?"
)
_NUMBERED = re.compile(r"(?:^|\s)\d+\|\s")  # a line number copied into a quote
_WORD = re.compile(r"[a-z0-9]+")


class Retriever(Protocol):
    """Scores texts against a query, higher is closer (one score per text)."""

    def scores(self, query: str, texts: Sequence[str]) -> list[float]: ...


class WordRetriever:
    """Word overlap weighted by rarity: needs nothing, deterministic."""

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        bags = [Counter(_WORD.findall(text.lower())) for text in texts]
        seen = Counter(word for bag in bags for word in bag)
        wanted = set(_WORD.findall(query.lower()))
        rarity = {w: math.log(1 + len(bags) / seen[w]) for w in wanted if seen[w]}
        return [
            sum(rarity[w] * math.log(1 + bag[w]) for w in rarity if w in bag)
            / math.sqrt(1 + sum(bag.values()))
            for bag in bags
        ]


@dataclass(frozen=True)
class Chunk:
    passage: Passage
    text: str


def chunks_of(document: ContextDocument) -> list[Chunk]:
    """The document cut into runs of lines, each under ``CHUNK_LINES`` and ``CHUNK_CHARS``."""
    found: list[Chunk] = []
    start, size = 1, 0
    for number, line in enumerate(document.lines, 1):
        size += len(line) + 1
        last = number == len(document.lines)
        if last or number - start + 1 >= CHUNK_LINES or size >= CHUNK_CHARS:
            passage = Passage(doc=document.id, start=start, end=number)
            found.append(Chunk(passage, document.numbered(start, number)))
            start, size = number + 1, 0
    return found


def budget_chars(model: str, max_tokens: int) -> int:
    """The characters of documents a seat on ``model`` is shown, its reply's cap left out."""
    window = context_window(model) or DEFAULT_WINDOW
    tokens = min(window // WINDOW_SHARE, window - max_tokens)
    return max(MIN_BUDGET_CHARS, tokens * CHARS_PER_TOKEN)


class Grounding:
    """A run's documents: the passages each (seat, stage) was shown, and citation checks."""

    def __init__(
        self,
        documents: Sequence[ContextDocument],
        retriever: Retriever | None = None,
        tools: str = "auto",
    ):
        self.documents = {d.id: d for d in documents}
        self.retriever = retriever or WordRetriever()
        self.tools = tools  # who may call the context tools: auto, on, off (context_tools)
        self._whole = [
            Chunk(Passage(doc=d.id, start=1, end=len(d.lines)), d.numbered())
            for d in documents
            if d.lines
        ]
        self.chars = sum(len(c.text) for c in self._whole)
        self._chunks: list[Chunk] | None = None  # cut on the first seat the whole does not fit
        self._shown: dict[tuple[str, str], list[Passage]] = {}
        self.unsupported: list[tuple[str, Citation]] = []  # (seat, citation), as turns end

    def shown(self, seat: str, stage: str) -> list[Passage]:
        return self._shown.get((seat, stage), [])

    def passages(self, seat: str, stage: str, query: str, budget: int) -> list[Passage]:
        """What ``seat`` is shown in ``stage``: every document when they fit ``budget``
        characters, else the chunks ``query`` ranks first, in document order."""
        key = (seat, stage)
        if key not in self._shown:
            self._shown[key] = self._choose(query, budget)
        return self._shown[key]

    def chunks(self) -> list[Chunk]:
        """Every document cut into passages (cut once, on first need)."""
        if self._chunks is None:
            self._chunks = [c for d in self.documents.values() for c in chunks_of(d)]
        return self._chunks

    def _choose(self, query: str, budget: int) -> list[Passage]:
        if self.chars <= budget:
            return [c.passage for c in self._whole]
        self._chunks = self.chunks()
        scores = self.retriever.scores(query, [c.text for c in self._chunks])
        ranked = sorted(range(len(self._chunks)), key=lambda i: (-scores[i], i))
        chosen: list[int] = []
        used = 0
        for index in ranked:
            size = len(self._chunks[index].text)
            if used + size <= budget:
                chosen.append(index)
                used += size
        order = list(self.documents)
        passages = [self._chunks[i].passage for i in chosen]
        return sorted(passages, key=lambda p: (order.index(p.doc), p.start))

    def block(self, passages: Sequence[Passage]) -> str:
        """The passages in fenced blocks, one per document, each line after its number."""
        parts = []
        for doc_id, document in self.documents.items():
            mine = [p for p in passages if p.doc == doc_id]
            if not mine:
                continue
            info = document.info
            ranges = ", ".join(f"{p.start}-{p.end}" for p in mine)
            text = "\n...\n".join(document.numbered(p.start, p.end) for p in mine)
            parts.append(
                f"[{doc_id}] {info.path} ({info.lines} lines; shown: lines {ranges})\n"
                f"```\n{text}\n```"
            )
        if not parts:
            return ""
        return "Context documents:\n\n" + "\n\n".join(parts) + f"\n\n{CITE_INSTRUCTION}"

    def checked(self, seat: str, text: str | None) -> list[Citation]:
        """``check``, the unsupported kept for the chair's verdict prompt."""
        citations = self.check(text or "")
        self.unsupported += [(seat, c) for c in citations if not c.valid]
        return citations

    def verdict_instruction(self) -> str:
        """What the chair is asked about evidence, with the citations that failed the check."""
        if not self.unsupported:
            return VERDICT_INSTRUCTION
        listed = "\n".join(f"- {seat}: {c.note}" for seat, c in self.unsupported)
        return f"{VERDICT_INSTRUCTION} These citations the documents do not support:\n{listed}"

    def check(self, text: str) -> list[Citation]:
        """Every citation ``text`` makes, each checked against the documents."""
        found = []
        for match in _CITATION.finditer(text):
            doc, start, end, quote = match.group(1), int(match.group(2)), match.group(3), None
            end_line = int(end) if end else start
            quote = match.group(4).strip() if match.group(4) else None
            problem = self._problem(doc, start, end_line, quote)
            found.append(
                Citation(
                    doc=doc,
                    start=start,
                    end=end_line,
                    quote=quote or None,
                    valid=problem is None,
                    problem=problem,
                )
            )
        return found

    def _problem(self, doc: str, start: int, end: int, quote: str | None) -> str | None:
        document = self.documents.get(doc)
        if document is None:
            return f"no document {doc}"
        count = len(document.lines)
        if start < 1 or end < start or end > count:
            lines = f"line {start}" if start == end else f"lines {start}-{end}"
            return f"{lines} outside {doc}'s {count} lines"
        if quote:
            span = _normal(" ".join(document.lines[start - 1 : end]))
            if _normal(_NUMBERED.sub(" ", quote)) not in span:
                return f"the quote is not in {doc}:{start}-{end}"
        return None


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()
