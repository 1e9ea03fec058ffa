"""The card linter: what would break a council (errors) and what would weaken one (warnings).

Errors: a card that does not load (``invalid-card``), a body that does not parse
(``template-syntax``), uses a variable nobody provides (``undeclared-variable``) or is refused
when rendered (``render-failed``), and ``polarity_pairs`` naming an unknown persona
(``unknown-pair``). Warnings: ``topic-label`` (no framework and no questions: a persona in name
only), ``no-blind-spots``, ``trait-tension`` (see ``TENSIONS``), ``similar-card``,
``one-sided-pair``, ``self-pair``, ``duplicate-name`` and ``placeholder-variable`` (a variable
whose default is still ``<...>``). ``todo`` (a TODO marker left in, an unresolved placeholder of
``personas new``) is an error: convening refuses such a card (``check_resolved``).

Similarity compares what a persona is (description, role, traits, frameworks, questions, blind
spots; the body too when a card has no frameworks or questions): cosine >= ``EMBEDDING_THRESHOLD``
with the bundled MiniLM embedder, or TF-IDF cosine over words and word pairs >=
``LEXICAL_THRESHOLD`` without it. Both flag near-copies, not cards that share a method.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import jinja2
import yaml
from jinja2 import meta, nodes

from council.base.errors import CardError
from council.personas.card import PersonaCard, load_card, split_front_matter
from council.personas.library import available_personas, card_files
from council.personas.prompt import provided_names, template_variables
from council.text.sandbox import TemplateProblem, sandbox
from council.text.templates import render_bounded

EMBEDDING_THRESHOLD = 0.92
LEXICAL_THRESHOLD = 0.6
# Traits that pull a persona two ways at once. A card with a word from each side of one pair
# (whole words inside its trait phrases, not after "not"/"never"/"without") gets a warning.
TENSIONS: tuple[tuple[frozenset[str], frozenset[str]], ...] = tuple(
    (frozenset(a.split()), frozenset(b.split()))
    for a, b in (
        (
            "empathetic empathic compassionate gentle tactful diplomatic kind warm",
            "blunt brusque abrasive harsh tactless callous cold",
        ),
        ("cautious prudent risk-averse careful", "reckless rash daredevil"),
        ("humble modest self-effacing", "arrogant conceited vain boastful grandiose"),
        ("patient", "impulsive impatient hasty"),
        ("skeptical sceptical doubting", "credulous gullible naive"),
        ("open-minded", "dogmatic closed-minded doctrinaire"),
        ("optimistic", "pessimistic"),
        ("decisive", "indecisive hesitant"),
        ("concise terse laconic", "verbose long-winded rambling garrulous"),
        ("calm composed serene unflappable", "volatile hot-tempered excitable"),
        ("impartial neutral even-handed", "partisan biased"),
        ("introverted reserved", "extroverted outgoing gregarious"),
        ("serious solemn", "flippant frivolous"),
        ("formal", "casual informal"),
        ("orthodox conventional traditionalist", "unorthodox unconventional iconoclastic"),
    )
)
_NEGATIONS = frozenset({"not", "never", "without", "no", "rarely"})
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_STOP = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "i",
        "in",
        "is",
        "it",
        "its",
        "my",
        "of",
        "on",
        "or",
        "our",
        "she",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    }
)
_TODO = re.compile(r"\bTODO\b")
_PLACEHOLDER = re.compile(r"\A<[^<>]*>\Z")

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem in one card: ``path:line: severity code: message``."""

    path: str
    name: str | None
    severity: Severity
    code: str
    message: str
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.severity} {self.code}: {self.message}"


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)
    cards: int = 0
    similarity: str = "lexical"

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0


def _field_lines(card: PersonaCard) -> dict[str, int]:
    """File line of each top-level front matter key (front matter starts on line 2)."""
    try:
        front = split_front_matter(card.text, card.where)[0]
        node = yaml.compose(front, Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, CardError):
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 2 for k, _ in node.value}


def _words(phrases: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for phrase in phrases:
        tokens = _WORD.findall(phrase.lower())
        found |= {t for i, t in enumerate(tokens) if i == 0 or tokens[i - 1] not in _NEGATIONS}
    return found


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def placeholders(
    card: PersonaCard, lines: dict[str, int] | None = None
) -> Iterable[tuple[str | None, int | None]]:
    """Where a card still has a TODO marker (what ``personas new`` scaffolds): (its field,
    or None for the body; its line where known)."""
    lines = _field_lines(card) if lines is None else lines
    for key, value in card.fields.model_dump(exclude={"extensions"}).items():
        if any(_TODO.search(text) for text in _strings(value)):
            yield key, lines.get(key)
    todo = _TODO.search(card.body)
    if todo:
        yield None, card.body_line + card.body.count("\n", 0, todo.start())


def check_resolved(card: PersonaCard) -> None:
    """Refuse a card whose scaffold placeholders are unresolved: convened, its model would be
    told "You are TODO: their role". One line: file, line, field."""
    for key, line in placeholders(card):
        raise CardError(
            card.path or card.name,
            "unresolved scaffold placeholder TODO: fill it in "
            f"(council personas lint {card.path or card.name})",
            line=line,
            field=key,
        )


class _CardLinter:
    def __init__(self, card: PersonaCard, known: dict[str, PersonaCard | Path]) -> None:
        self.card, self.known = card, known
        self.lines = _field_lines(card)
        self.findings: list[Finding] = []

    def add(self, severity: Severity, code: str, message: str, key: str | None = None) -> None:
        line = self.lines.get(key) if key else None
        self.findings.append(
            Finding(str(self.card.path), self.card.name, severity, code, message, line)
        )

    def run(self) -> list[Finding]:
        self.template()
        fields = self.card.fields
        if not fields.framework and not fields.asks:
            self.add(
                "warning",
                "topic-label",
                "no named framework and no questions it asks: "
                "a topic label, not a way of reasoning",
                "framework",
            )
        if not fields.blind_spots:
            self.add("warning", "no-blind-spots", "no blind spots: say what this persona misses")
        words = _words(fields.traits)
        for left, right in TENSIONS:
            if words & left and words & right:
                pair = f"{sorted(words & left)[0]}/{sorted(words & right)[0]}"
                self.add("warning", "trait-tension", f"traits pull apart: {pair}", "traits")
        for name, default in fields.variables.items():
            if _PLACEHOLDER.match(default):
                self.add(
                    "warning",
                    "placeholder-variable",
                    f"variable '{name}' has only a placeholder default '{default}'",
                    "variables",
                )
        for key, line in placeholders(self.card, self.lines):
            where = f"'{key}' still has" if key else "the body still has"
            self.findings.append(  # an error: a council would be told "You are TODO: ..."
                Finding(
                    str(self.card.path),
                    self.card.name,
                    "error",
                    "todo",
                    f"{where} a TODO (an unresolved scaffold placeholder)",
                    line,
                )
            )
        self.pairs()
        return self.findings

    def template(self) -> None:
        card, env = self.card, sandbox()
        try:
            tree = env.parse(card.body)
        except jinja2.TemplateSyntaxError as exc:
            line = card.body_line + (exc.lineno or 1) - 1
            message = f"template syntax error: {exc.message}"
            self.findings.append(
                Finding(str(card.path), card.name, "error", "template-syntax", message, line)
            )
            return
        # One render in the bounded worker first: compiling a template folds its constants
        # ('%999999999s' % 'x' is a gigabyte), so a template past the budget is never compiled
        # here, where nothing bounds it. Such a card gets one finding and no more work.
        variables = template_variables(card, "A test question for the linter?")
        try:
            render_bounded(card.body, variables)
            failure = None
        except TemplateProblem as problem:
            if problem.kind in ("budget", "memory"):
                self.add("error", "render-failed", problem.message)
                return
            failure = problem.message
        missing = meta.find_undeclared_variables(tree) - provided_names(card.fields)
        missing -= set(env.globals)
        for name in sorted(missing):
            uses = [n.lineno for n in tree.find_all(nodes.Name) if n.name == name]
            self.findings.append(
                Finding(
                    str(card.path),
                    card.name,
                    "error",
                    "undeclared-variable",
                    f"template variable '{name}' is provided by nobody (not a card field, not "
                    "'topic', not in 'variables')",
                    card.body_line + min(uses, default=1) - 1,
                )
            )
        if failure is not None and not missing:
            self.add("error", "render-failed", failure)

    def pairs(self) -> None:
        name = self.card.name
        for other in self.card.fields.polarity_pairs:
            if other == name:
                self.add("warning", "self-pair", "lists itself in polarity_pairs", "polarity_pairs")
            elif other not in self.known:
                self.add(
                    "error",
                    "unknown-pair",
                    f"polarity pair '{other}' is not a known persona",
                    "polarity_pairs",
                )
            else:
                found = self.known[other]
                try:
                    partner = found if isinstance(found, PersonaCard) else load_card(found)
                except CardError:
                    continue  # reported where that card is linted
                if name not in partner.fields.polarity_pairs:
                    self.add(
                        "warning",
                        "one-sided-pair",
                        f"'{other}' does not list '{name}' among its polarity pairs",
                        "polarity_pairs",
                    )


def profile(card: PersonaCard) -> str:
    """What a persona is, as text for similarity."""
    f = card.fields
    parts = [f.description, f.role, *f.traits, *f.framework, *f.asks, *f.blind_spots]
    if not f.framework and not f.asks:
        parts.append(re.sub(r"\{[{%#].*?[}%#]\}", " ", card.body, flags=re.DOTALL))
    return "\n".join(parts)


def lexical_similarity(texts: Sequence[str]) -> list[list[float]]:
    """TF-IDF cosine (words and word pairs, smoothed IDF) between every two texts."""
    grams: list[Counter[str]] = []
    for text in texts:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
        grams.append(Counter(words + [f"{a} {b}" for a, b in itertools.pairwise(words)]))
    df = Counter(g for counts in grams for g in counts)
    idf = {g: math.log((1 + len(texts)) / (1 + n)) + 1 for g, n in df.items()}
    vectors = [{g: (1 + math.log(c)) * idf[g] for g, c in counts.items()} for counts in grams]
    norms = [math.sqrt(sum(v * v for v in vec.values())) or 1.0 for vec in vectors]
    pairs = list(zip(vectors, norms, strict=True))
    return [
        [sum(w * b.get(g, 0.0) for g, w in a.items()) / (na * nb) for b, nb in pairs]
        for a, na in pairs
    ]


class TextEncoder(Protocol):
    """What the linter needs of an embedder: unit vectors for texts (see council.meter)."""

    name: str

    def encode(self, texts: Sequence[str]) -> Any: ...


def _similar(
    linted: list[PersonaCard], others: list[PersonaCard], embedder: TextEncoder | None
) -> tuple[list[Finding], str]:
    cards = linted + others
    texts = [profile(c) for c in cards]
    if embedder is not None:
        vectors = embedder.encode(texts)
        matrix = (vectors @ vectors.T).tolist()
        threshold, method = EMBEDDING_THRESHOLD, f"embedding ({embedder.name})"
    else:
        matrix = lexical_similarity(texts)
        threshold, method = LEXICAL_THRESHOLD, "lexical"
    findings = []
    for i, card in enumerate(linted):
        for j in range(i + 1, len(cards)):
            if cards[j].name != card.name and matrix[i][j] >= threshold:
                findings.append(
                    Finding(
                        str(card.path),
                        card.name,
                        "warning",
                        "similar-card",
                        f"too similar to '{cards[j].name}' ({cards[j].path}): {method} cosine "
                        f"{matrix[i][j]:.2f} >= {threshold}",
                    )
                )
    return findings, method


def lint_paths(
    paths: Sequence[Path | str], *, embedder: TextEncoder | None = None, note: str = ""
) -> LintReport:
    """Lint the cards in files and folders (recursively), against the whole search path.

    Similarity is measured with ``embedder`` when given (the CLI passes the bundled one),
    lexically otherwise; ``note`` says why it is lexical when an embedder was wanted.
    """
    report = LintReport()
    loaded: list[PersonaCard] = []
    for path in card_files(paths):
        report.cards += 1
        try:
            loaded.append(load_card(path))
        except CardError as exc:
            what = f"field '{exc.field}': {exc.message}" if exc.field else exc.message
            report.findings.append(
                Finding(str(path), path.stem, "error", "invalid-card", what, exc.line)
            )
    library = available_personas()
    known: dict[str, PersonaCard | Path] = {**library}
    seen: dict[str, PersonaCard] = {}
    for card in loaded:
        if card.name in seen:
            report.findings.append(
                Finding(
                    str(card.path),
                    card.name,
                    "warning",
                    "duplicate-name",
                    f"another card is also named '{card.name}' ({seen[card.name].path}); "
                    "only the first one found is used",
                )
            )
        seen.setdefault(card.name, card)
    known |= seen
    for card in loaded:
        report.findings += _CardLinter(card, known).run()
    ours = {c.where.resolve() for c in loaded}
    others = []
    for name, path in library.items():
        if name not in seen and path.resolve() not in ours:
            try:
                others.append(load_card(path))
            except CardError:
                continue  # not ours to report
    similar, method = _similar(loaded, others, embedder)
    report.findings += similar
    report.similarity = f"{method} ({note})" if note and embedder is None else method
    report.findings.sort(key=lambda f: (f.path, f.line or 0, f.severity, f.code))
    return report
