"""What council checks of the chair's verdict, mechanically, once the chair has written it.

A verdict passes when it has every required section, each filled; states the outcome the tally
of the vote it read came to (consensus, split or inconclusive); names every seat that held a
dealbreaker in that vote (nyk's ``DEALBREAKER: yes``); and was neither cut off at its token cap
nor over the stage's word limit. The required sections are the synthesis stage's ``sections:``
where the protocol lists them, else the deepest Markdown headings of its rendered prompt (nyk's
``### Problem``, ``### Kill Criteria``, ...), less those marked ``(optional)`` or
``(encouraged)``. A protocol with neither, and no vote, asks for nothing to check but length.

A verdict that fails is sent back to the chair once, with what it lacks (its own turn,
``<stage>.reask``, counted as an enforcement call tagged ``verdict_check``). The re-asked
verdict replaces the first; if it still fails, the run records the verdict ``unchecked`` with
the reasons (``VerdictCheck``), and ``council convene`` exits with its own status. No model
weighs the verdict here: a check reads words, so it says what is *missing*, never whether an
argument is good.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from council.engine.context import name_variants
from council.engine.stage_kinds import RunState
from council.protocols.spec import SpeakingStage
from council.records.run import Tally, Turn
from council.records.verdicts import VerdictCheck
from council.seats.seat import Seat

TAG = "verdict_check"  # the enforcement tag of the re-ask
_OPTIONAL = re.compile(r"\((?:optional|encouraged)\)", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}(?P<level>#{1,6})\s+(?P<title>.*?)\s*#*\s*$")
# A section a model marks as a bold label or a line-leading label: "**Verdict:** ...",
# "- **Dissent**: ...", "Open questions: ...".
_BOLD = re.compile(r"^\s*(?:[-*+]\s+)?(?:\*\*|__)(?P<title>[^*_]+?)(?:\*\*|__)\s*(?P<rest>.*)$")
_COLON = re.compile(r"^\s*(?:[-*+]\s+)?(?P<title>[^:*#]{1,80}?):\s*(?P<rest>.*)$")
_WORDS = re.compile(r"[^\W_]+")

# How a verdict states a vote's outcome. "No consensus", "did not reach consensus" and
# "consensus was not reached" state a split; "Consensus:" or "Consensus & Agreement" is a
# label, and "the consensus threshold" a rule, not a claim.
_NEGATED = re.compile(
    r"\b(?:no|not|without|never|lacks?|lacking|short\s+of|fail(?:s|ed)?\s+to\s+reach)\b"
    r"[^.;:\n]{0,30}?\bconsensus\b"
    r"|\bconsensus\b[^.;\n]{0,25}?\b(?:not|never|wasn't|isn't|failed)\b",
    re.IGNORECASE,
)
_CONSENSUS = re.compile(r"\bconsensus\b", re.IGNORECASE)
_NOT_A_CLAIM = re.compile(
    r"\s*(?:\*\*|__)?\s*(?:[:&]|and\b|threshold|bar\b|line\b|rule\b)", re.IGNORECASE
)
_SPLIT = re.compile(
    r"\bsplit\b|\bno\s+option\s+(?:carries|carried|cleared|reached)\b|\bdeadlock", re.IGNORECASE
)
_INCONCLUSIVE = re.compile(r"\binconclusive\b", re.IGNORECASE)
_CARRIES = re.compile(r"\bcarries\b|\bcleared\s+the\s+[\d/.]*\s*threshold", re.IGNORECASE)
_NEGATION_BEFORE = re.compile(r"\b(?:no|not|never|none|nothing)\b[^.;:\n]*$", re.IGNORECASE)
# What each outcome may also be called: nyk's templates ask an inconclusive vote to be
# reported as "No consensus reached" / "Split" too.
_ALLOWED = {
    "consensus": {"consensus"},
    "split": {"split"},
    "inconclusive": {"inconclusive", "split"},
}
_MEANS = {
    "consensus": "{winner} carries: it cleared the threshold",
    "split": "no option cleared the threshold: no consensus reached",
    "inconclusive": "no option carries, and the ballots that went uncounted could have decided it",
}


@dataclass(frozen=True)
class VerdictFacts:
    """What a verdict is checked against: the sections required, the tally of the vote the
    chair read, and the names each seat may go by."""

    sections: list[str] = field(default_factory=list)
    tally: Tally | None = None
    names: Mapping[str, list[str]] = field(default_factory=dict)
    headings: list[str] = field(default_factory=list)  # the template's, optional ones too
    question: str = ""  # as asked: its words state no outcome

    @property
    def dealbreakers(self) -> list[str]:
        """Seats that held the opposing option actively harmful (nyk's ``DEALBREAKER: yes``,
        which the Minority Report must carry even when outvoted). On the council scale a
        dealbreaker is what would change the seat's mind, which every seat may state: a
        condition, not an objection a verdict must name."""
        if self.tally is None or self.tally.dealbreaker != "harmful":
            return []
        return [b.seat for b in self.tally.ballots if b.valid and b.dealbreaker]


class CheckedRun(RunState, Protocol):
    """What the check reads and sets of the run (the engine's ``Deliberation``)."""

    verdict_check: VerdictCheck | None
    question: str

    def _stage_prompt(self, stage: SpeakingStage, seat: Seat, round_number: int) -> str: ...


def template_headings(prompt: str) -> list[str]:
    """The sections of a verdict template: its deepest Markdown headings (a template's title
    sits above them)."""
    headings = [m for line in prompt.splitlines() if (m := _HEADING.match(line))]
    deepest = max((len(m["level"]) for m in headings), default=0)
    return [m["title"] for m in headings if len(m["level"]) == deepest]


def required(headings: Sequence[str]) -> list[str]:
    """Those a verdict must have: all but the ones marked (optional) or (encouraged)."""
    return [title for title in headings if not _OPTIONAL.search(title)]


def _key(title: str) -> str:
    """A section title as compared: case, punctuation, "&"/"and", parentheses and leading
    numbers aside ("2. Consensus and agreement:" matches "Consensus & Agreement")."""
    title = re.sub(r"\(.*?\)", " ", title.lower())
    words = [w for w in _WORDS.findall(title) if w != "and"]
    while words and words[0].isdigit():
        words.pop(0)
    return " ".join(words)


def _marker(line: str, wanted: set[str]) -> tuple[str, str] | None:
    """(section key, text after it on its line) when the line opens a section: a Markdown
    heading, or a bold or colon label naming a wanted section."""
    heading = _HEADING.match(line)
    if heading:
        return _key(heading["title"]), ""
    for pattern in (_BOLD, _COLON):
        label = pattern.match(line)
        if label and _key(label["title"]) in wanted:
            return _key(label["title"]), label["rest"].lstrip(":").strip()
    return None


def verdict_sections(text: str, wanted: Sequence[str]) -> dict[str, str]:
    """Section key -> its text (every occurrence), as the verdict writes them."""
    keys = {_key(s) for s in wanted}
    found: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        marker = _marker(line, keys)
        if marker is not None:
            current, rest = marker
            found[current] = found.get(current, "") + rest + "\n"
        elif current is not None:
            found[current] += line + "\n"
    return found


def stated_outcomes(text: str) -> set[str]:
    """The vote outcomes a text states (consensus, split, inconclusive)."""
    stated = set()
    if _INCONCLUSIVE.search(text):
        stated.add("inconclusive")
    negated = [m.span() for m in _NEGATED.finditer(text)]
    if negated or _SPLIT.search(text):
        stated.add("split")
    for m in _CONSENSUS.finditer(text):
        inside = any(start <= m.start() < end for start, end in negated)
        if not inside and not _NOT_A_CLAIM.match(text, m.end()):
            stated.add("consensus")
    for m in _CARRIES.finditer(text):  # "monorepo carries", "it cleared the 2/3 threshold"
        if not _NEGATION_BEFORE.search(text[max(0, m.start() - 30) : m.start()]):
            stated.add("consensus")
    return stated


def outcome_meaning(tally: Tally) -> str:
    assert tally.outcome is not None
    return f"{tally.outcome} ({_MEANS[tally.outcome].format(winner=tally.winner)})"


def _scrubbed(text: str, phrases: Sequence[str]) -> str:
    """The text without the question as asked and the vote's options: "split" in "Should we
    split the repo?", or an option named "split", states no outcome."""
    for phrase in sorted({p for p in phrases if p.strip()}, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", " ", text, flags=re.IGNORECASE)
    return text


def _outcome_problem(
    text: str, sections: Mapping[str, str], tally: Tally, question: str
) -> str | None:
    assert tally.outcome is not None
    # Where the template has a consensus section, the outcome is read there, so a "split"
    # elsewhere (in the problem as restated, say) is not taken for a claim.
    scope = "\n".join(body for key, body in sections.items() if key.startswith("consensus"))
    if not scope.strip():
        scope = "\n".join(line for line in text.splitlines() if not _HEADING.match(line))
    options = [*tally.scores, *(b.stance for b in tally.ballots if b.stance)]
    stated = stated_outcomes(_scrubbed(scope, [question, *options]))
    if tally.outcome not in stated:
        said = f"it states {' and '.join(sorted(stated))}" if stated else "not stated"
        return f"outcome: {said}; the tally's is {outcome_meaning(tally)}"
    wrong = stated - _ALLOWED[tally.outcome]
    if wrong:
        return (
            f"outcome: it states {' and '.join(sorted(wrong))} as well as "
            f"{tally.outcome}; the tally's is {outcome_meaning(tally)}"
        )
    return None


def _names(text: str, variants: Sequence[str]) -> bool:
    return any(re.search(rf"\b{re.escape(v)}\b", text, re.IGNORECASE) for v in variants)


def verdict_problems(turn: Turn, facts: VerdictFacts) -> list[str]:
    """What the verdict lacks, one reason a line; empty when it passes."""
    text = turn.content or ""
    found = verdict_sections(text, facts.sections)
    missing = [s for s in facts.sections if _key(s) not in found]
    empty = [s for s in facts.sections if _key(s) in found and not _WORDS.search(found[_key(s)])]
    problems = []
    if missing:
        problems.append("missing sections: " + ", ".join(missing))
    if empty:
        problems.append("empty sections: " + ", ".join(empty))
    if facts.tally is not None:
        problem = _outcome_problem(text, found, facts.tally, facts.question)
        problems += [problem] if problem else []
    unnamed = [s for s in facts.dealbreakers if not _names(text, facts.names.get(s, [s]))]
    if unnamed:
        problems.append("dealbreakers not named: " + ", ".join(unnamed))
    if turn.truncated:
        cap = f" ({turn.request.max_tokens} tokens)" if turn.request is not None else ""
        problems.append(f"length: cut off at its token cap{cap}")
    if turn.over_limit:
        problems.append(f"length: {turn.words} words, over the limit of {turn.word_limit}")
    return problems


def outcome_problem(text: str, facts: VerdictFacts) -> str | None:
    """Whether a verdict states the outcome its tally came to, read as ``verdict_problems``
    reads it (in its consensus section where it has one); None when it does, or no tally."""
    if facts.tally is None or facts.tally.outcome is None:
        return None
    found = verdict_sections(text, facts.sections or template_headings(text))
    return _outcome_problem(text, found, facts.tally, facts.question)


def unnamed_dealbreakers(text: str, facts: VerdictFacts) -> list[str]:
    """The seats that held a dealbreaker (``VerdictFacts.dealbreakers``) the verdict never
    names, by any name the seat goes by."""
    return [s for s in facts.dealbreakers if not _names(text, facts.names.get(s, [s]))]


def reask_instruction(problems: Sequence[str], facts: VerdictFacts, words: int | None) -> str:
    """What the chair is told when its verdict is sent back: what is missing, then how the
    whole verdict must read this time."""
    lines = [
        "Council checked your verdict and it falls short:",
        *(f"- {problem}" for problem in problems),
        "",
        "Write the whole verdict again, with these fixed.",
    ]
    if facts.sections:
        lines += [
            "Use exactly these headings, in this order, each followed by its content (or "
            '"N/A — <reason>"):',
            *(f"### {section}" for section in facts.headings),
        ]
    if facts.tally is not None:
        lines.append(
            f"State the vote's outcome as the tally gives it: {outcome_meaning(facts.tally)}."
        )
    if facts.dealbreakers:
        lines.append(
            "Name every member who held a dealbreaker: " + ", ".join(facts.dealbreakers) + "."
        )
    if words is not None:
        lines.append(f"Keep within {words} words.")
    if any(problem.startswith("length: cut off") for problem in problems):
        lines.append("Write it shorter: the verdict was cut off before its end.")
    return "\n".join(lines)


def outcome_tally(stage: SpeakingStage, tallies: Mapping[str, Tally]) -> Tally | None:
    """The vote whose outcome the verdict must state: the last one of the stages it reads
    that came to one (a Delphi median states an estimate, not an outcome)."""
    seen = [tallies[s] for s in stage.sees if s in tallies]
    votes = [t for t in seen if t.kind == "vote" and t.outcome is not None and t.rule != "median"]
    return votes[-1] if votes else None


def facts_for(run: CheckedRun, stage: SpeakingStage, seat: Seat, round_number: int) -> VerdictFacts:
    listed = getattr(stage, "sections", None)
    headings = list(listed or template_headings(run._stage_prompt(stage, seat, round_number)))
    names = {name: [name, *name_variants(s)] for name, s in run.seats.items()}
    tally = outcome_tally(stage, run.tallies)
    return VerdictFacts(required(headings), tally, names, headings, run.question)


async def checked(
    run: CheckedRun, stage: SpeakingStage, turns: list[Turn], round_number: int
) -> list[Turn]:
    """The synthesis' turns once its verdict is checked, and asked for once more if it fell
    short; sets ``run.verdict_check``."""
    first = next((t for t in turns if t.ok), None)
    if first is None:
        return turns
    seat = run.seats[first.seat]
    facts = facts_for(run, stage, seat, round_number)
    problems = verdict_problems(first, facts)
    if not problems:
        run.verdict_check = VerdictCheck(status="checked")
        return turns
    instruction = reask_instruction(problems, facts, stage.words)
    again = await run.ask_again(stage, seat, round_number, first, instruction, tag=TAG)
    reasons = (
        verdict_problems(again, facts)
        if again.ok
        else [f"asked again, the chair gave no verdict: {again.error}"]
    )
    run.verdict_check = VerdictCheck(
        status="unchecked" if reasons else "checked",
        reasons=reasons,
        reasked=True,
        first_reasons=problems,
    )
    if not again.ok:  # the first verdict stands, unchecked
        return turns
    return [t.model_copy(update={"content": again.content}) if t is first else t for t in turns]
