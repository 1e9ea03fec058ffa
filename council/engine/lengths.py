"""Reply lengths: the word limit a stage states, the token cap a turn gets, and what is checked
of each reply afterwards.

- **Word limits.** A stage's ``words: N`` is stated to the seat once, by the engine, as the line
  ``Limit: N words maximum.`` after the stage's prompt (nyk's wording: "Limit: 400 words
  maximum."; SKILL.md v1.2.0, MIT, 0xNyk). A protocol file does not repeat it in its prompt.
- **Token caps.** A turn's cap is, first match wins: the user's cap (``--max-tokens``,
  ``SamplingSettings.max_tokens``), which *replaces* every stage's cap, raising or lowering
  it; the stage's own ``max_tokens``; the cap its word limit implies; the protocol's
  ``max_tokens``. The implied cap is ``TOKENS_PER_WORD`` tokens a word plus
  ``FORMAT_TOKENS`` for the lines the engine asks for, so a reply within its limit is never
  cut off: English prose measured 1.4 to 1.6 tokens a word (median of 400-word chunks of this
  repository's persona cards and docs, on the cl100k, Claude and DeepSeek tokenizers), at most
  1.78; 2 covers the worst of them with room to spare.
- **Checks.** Each reply's words are counted afterwards (nyk: "verify each is within the
  limit") and recorded on its turn: ``words``, ``word_limit`` and ``over_limit``. A reply over
  its limit is kept, shown as such and counted; it is not asked again, since asking costs a
  call and throws away an answer whose only fault is length, and the count says how well
  seats kept to their limits. The line the engine asked for at the end of a reply that must
  parse (a vote, a ranking, a moderator's decision) is not counted, as nyk's "100 words or
  less" is the prose before the stance line.
- **Cut-offs.** A reply the provider stopped at the cap (``finish_reason == "length"``) is
  recorded ``truncated``. With ``CallSettings.continue_truncated`` (``--continue-truncated``)
  the seat is asked once to continue: its partial reply as the assistant's message and
  ``CONTINUE_INSTRUCTION``; that call is a turn of its own, ``<stage>.continue``, and the
  stage's turn holds both parts, marked ``continued`` (and still ``truncated`` only if the
  continuation was cut off too). A continuation is never continued.
- **Reasoning.** A model that thinks before it answers spends completion tokens on reasoning
  under the same cap, so a turn's cap gets ``REASONING_HEADROOM`` on top for a seat given a
  reasoning effort, or on a model known to reason (the effort's headroom, ``medium``'s when
  none is given). litellm sends ``low``/``medium``/``high`` to Anthropic as thinking budgets of
  1024/2048/4096 tokens, which must fit under the cap with the answer; the headroom is those
  budgets. A reply that is empty because reasoning used the whole cap (cut off, no answer,
  reasoning given) is recorded ``starved`` and asked once more with ``retry_cap``; that call
  is a turn of its own, ``<stage>.retry``, and the stage's turn holds its answer.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable

from council.engine.budget import BudgetExceeded
from council.engine.structured import structured_fields
from council.protocols.spec import SpeakingStage
from council.records.run import CONTINUATION, REASONING_RETRY, Turn
from council.seats.model import ModelRequest

TOKENS_PER_WORD = 2  # a cap with headroom: measured prose runs 1.4 to 1.78 tokens a word
FORMAT_TOKENS = 48  # a vote line, a ranking or a moderator's decision after the prose
CONTINUE_INSTRUCTION = (
    "Your reply was cut off at the length limit. Continue it exactly where it stopped: do not "
    "repeat anything, do not start over, and finish it."
)
# A word as a reader counts it: letters or digits, with inner apostrophes or hyphens
# ("don't", "first-principles"); Markdown marks, bullets and pipes are not words.
# Tokens a reasoning model may think in before its answer, by reasoning effort (see above).
REASONING_HEADROOM = {"none": 0, "minimal": 512, "low": 1024, "medium": 2048, "high": 4096}
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_LAST_LINE = frozenset({"vote", "number", "decision"})  # replies that end in a line to parse
_RANKING = re.compile(r"final\s+ranking", re.IGNORECASE)  # a ranking's list starts here


def limit_line(words: int) -> str:
    return f"Limit: {words} words maximum."


def stated(words: int | None, instruction: str | None) -> str | None:
    """The instruction a seat is sent after the stage's prompt, with its word limit first."""
    if words is None:
        return instruction
    return f"{limit_line(words)}\n\n{instruction}" if instruction else limit_line(words)


def implied_cap(words: int) -> int:
    """The token cap a word limit implies: enough that a reply within the limit is not cut."""
    return words * TOKENS_PER_WORD + FORMAT_TOKENS  # integers: no limit is too large for it


def token_cap(stage: SpeakingStage, protocol_cap: int, user_cap: int | None) -> int:
    if user_cap:
        return user_cap  # the user's cap replaces every stage's, raising or lowering it
    if stage.max_tokens:
        return stage.max_tokens
    return implied_cap(stage.words) if stage.words else protocol_cap


def reasoning_headroom(effort: str | None, reasons: bool) -> int:
    """Tokens added to a turn's cap so that reasoning cannot starve its answer."""
    if effort is None:
        return REASONING_HEADROOM["medium"] if reasons else 0
    return REASONING_HEADROOM.get(effort, REASONING_HEADROOM["medium"])


def retry_cap(cap: int) -> int:
    """The cap a starved reply is asked again with: twice its own, and the most headroom."""
    return cap * 2 + REASONING_HEADROOM["high"]


def count_words(text: str, expects: str = "text") -> int:
    """Words in a reply, less what the engine asked for after the prose: the last line of a
    vote or a moderator's decision, a ranking's FINAL RANKING list. A ballot given as JSON
    counts the words of its reason, its prose."""
    fields = structured_fields(text) if expects in _LAST_LINE else None
    if fields is not None:
        return len(_WORD.findall(str(fields.get("reason") or "")))
    if expects in _LAST_LINE:
        lines = text.rstrip().splitlines()
        text = "\n".join(lines[:-1]) if len(lines) > 1 else text
    elif expects == "ranking":
        found = list(_RANKING.finditer(text))
        text = text[: found[-1].start()] if found else text
    return len(_WORD.findall(text))


def measured(turn: Turn, words: int | None) -> Turn:
    """The turn with its words counted against the stage's limit (unchanged without one)."""
    if words is None or not turn.ok or turn.content is None:
        return turn
    expects = turn.request.expects if turn.request is not None else "text"
    count = count_words(turn.content, expects)
    update = {"word_limit": words, "words": count, "over_limit": count > words}
    return turn.model_copy(update=update)


def is_continuation(stage_id: str) -> bool:
    """A part of a stage's turn (a continuation, a starved reply's retry), not a reply."""
    return stage_id.endswith((CONTINUATION, REASONING_RETRY))


def retried(turn: Turn, again: Turn) -> Turn:
    """The starved turn with the answer its retry gave; a failed retry leaves it empty."""
    if not again.ok:
        return turn
    update = {
        "content": again.content,
        "error": None,
        "truncated": again.truncated,
        "reasoning": again.reasoning,
    }
    return turn.model_copy(update=update)


def continuation_request(request: ModelRequest, partial: str) -> ModelRequest:
    """The call that asks a cut-off reply to go on: the same prompt and cap, the partial
    reply as the seat's own message, then the instruction to continue."""
    return dataclasses.replace(
        request,
        messages=[
            *request.messages,
            {"role": "assistant", "content": partial},
            {"role": "user", "content": CONTINUE_INSTRUCTION},
        ],
    )


def joined(turn: Turn, continuation: Turn) -> Turn:
    """The cut-off turn with its continuation appended (joined by a space: the parts were
    each stripped of the whitespace between them). A failed continuation leaves it cut off."""
    if not continuation.ok:
        return turn
    return turn.model_copy(
        update={
            "content": f"{turn.content} {continuation.content}",
            "continued": True,
            "truncated": continuation.truncated,
        }
    )


def should_continue(turn: Turn, enabled: bool) -> bool:
    return enabled and turn.truncated and turn.ok and not is_continuation(turn.stage)


# Makes one more call for a seat in a stage (a request, the id its turn is recorded under).
TakeTurn = Callable[[ModelRequest, str], Awaitable[Turn]]


async def finished(
    turn: Turn,
    request: ModelRequest,
    stage: SpeakingStage,
    continue_truncated: bool,
    take: TakeTurn,
) -> Turn:
    """The turn as it is recorded: asked again with a larger cap if reasoning starved it,
    continued once if it was cut off (and that was asked for), then counted against its
    stage's word limit. A continuation or a retry is none of these: it is a part."""
    if is_continuation(turn.stage):
        return turn
    if turn.starved:
        try:
            bigger = dataclasses.replace(request, max_tokens=retry_cap(request.max_tokens))
            turn = retried(turn, await take(bigger, turn.stage + REASONING_RETRY))
        except BudgetExceeded:
            pass  # a retry the budget cannot cover is not made: the turn stays empty
    if should_continue(turn, continue_truncated):
        assert turn.content is not None
        try:
            again = continuation_request(request, turn.content)
            turn = joined(turn, await take(again, turn.stage + CONTINUATION))
        except BudgetExceeded:
            pass  # a continuation the budget cannot cover is not made: the reply stays cut off
    return measured(turn, stage.words)
