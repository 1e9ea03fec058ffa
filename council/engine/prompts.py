"""The prompts a seat is sent: its card's system prompt, then the stages it may see (labelled,
anonymized where the protocol says so), the stage's own prompt and the format instruction the
engine adds so replies parse. A mixin of ``Deliberation``, which holds the run's state."""

from __future__ import annotations

import dataclasses
from typing import cast

from council.base.errors import ProtocolError
from council.engine import gates, lengths
from council.engine.context import Anonymizer, Section, visible_context
from council.engine.convergence import MODERATOR_INSTRUCTION
from council.engine.grounding import Grounding, budget_chars
from council.engine.stage_kinds import PLAIN_KIND, Instruction, RunState, StageKind, behaviour_of
from council.personas.prompt import template_variables
from council.protocols.graph import Protocol
from council.protocols.spec import ANONYMIZE_SWITCH, LoopStage, RankingStage, SpeakingStage
from council.records.run import FollowUp, Tally, Turn
from council.records.settings import SamplingSettings
from council.seats.model import ModelRequest
from council.seats.seat import Seat
from council.text.templates import render_template

# The no-persona voice: the meter's drift pole and a guard's noise-floor baseline.
ASSISTANT_SYSTEM_PROMPT = "You are a helpful assistant."
# Each seat samples with its own seed, the run's seed plus this stride times its place in the
# seating. Seats that shared one seed opened alike (17-20% of pairs of *different* personas
# began with the same three words), which made personas look closer than they are; a placebo
# arm seated the same way gets the same per-place seeds, so it differs only in who sits.
SEAT_SEED_STRIDE = 1_000_003


class StagePrompts:
    protocol: Protocol
    question: str
    panel: list[Seat]
    seats: dict[str, Seat]
    labels: dict[str, str]
    anonymizer: Anonymizer
    sampling: SamplingSettings
    tallies: dict[str, Tally]
    _latest: dict[str, list[Turn]]
    _partial: dict[str, list[Turn]]
    _system: dict[str, str]
    switches: dict[str, bool]
    questioners: list[str]
    grounding: Grounding | None
    follow_up: FollowUp | None

    @property
    def _state(self) -> RunState:
        """This run, as stage kinds read it (``Deliberation`` is the whole of it)."""
        return cast("RunState", self)

    def _kind(self, stage: SpeakingStage) -> StageKind:
        """The stage's behaviour; a vote stage whose ``votes_when`` switch is off is plain."""
        if stage.votes_when is not None and not self.switches[stage.votes_when]:
            return PLAIN_KIND
        return behaviour_of(stage)

    def _stage_prompt(self, stage: SpeakingStage, seat: Seat, round_number: int) -> str:
        variables: dict[str, object] = {
            "question": self.question,
            "seat": seat.name,
            "persona": seat.persona.name,
            "stage": stage.id,
            "members": len(self.panel),
            "round": round_number,
            "rounds": self._rounds_of(stage),
            # The seat's own card, so a prompt can re-anchor it: {{ card.description }}, ...
            "card": template_variables(seat.persona, self.question),
            # Whether this seat is the protocol's questioner (nyk's Socrates: one question).
            "questioner": seat.name in self.questioners,
            **self._kind(stage).variables(self._state, stage),
        }
        loop = self._loop_of(stage)
        return render_template(
            stage.prompt,
            variables,
            path=self.protocol.path,
            first_line=self.protocol.prompt_line(stage.id),
            error=ProtocolError,
            field=f"stage '{stage.id}'.prompt" + (f" (round {round_number})" if loop else ""),
        )

    def _loop_of(self, stage: SpeakingStage) -> LoopStage | None:
        loop_id = self.protocol.loop_of.get(stage.id)
        loop = self.protocol.stage(loop_id) if loop_id else None
        return loop if isinstance(loop, LoopStage) else None

    def _rounds_of(self, stage: SpeakingStage) -> int:
        loop = self._loop_of(stage)
        return loop.rounds if loop else 1

    def _sections(self, stage: SpeakingStage, seat: Seat) -> list[Section]:
        sections = []
        for seen in stage.sees:
            # A stage that sees itself (inside a loop) reads its previous round: this round's
            # turns are stored only once the stage has finished.
            turns = self._latest.get(seen, [])
            if turns:
                title = self.protocol.stage(seen).label
                sections.append(Section(title, turns, self.tallies.get(seen)))
        # A stage taken one seat after another: the replies given before this seat's.
        so_far = self._partial.get(stage.id, [])
        order = [t.seat for t in so_far]
        earlier = so_far[: order.index(seat.name)] if seat.name in order else so_far
        if earlier:
            sections.append(Section(f"{stage.label}: replies before yours", list(earlier)))
        return sections

    def _anonymizes(self, stage: SpeakingStage) -> bool:
        """Whether others show as Member A, B: as the stage says, unless a run turned the
        anonymize switch off (rankings keep their labels: their ballots are the labels)."""
        return stage.anonymize and (
            self.switches[ANONYMIZE_SWITCH] or isinstance(stage, RankingStage)
        )

    def _messages(
        self, stage: SpeakingStage, seat: Seat, round_number: int, instruction: str | None
    ) -> list[dict[str, str]]:
        prompt = self._stage_prompt(stage, seat, round_number)
        if instruction:
            prompt = f"{prompt}\n\n{instruction}"
        sections = self._sections(stage, seat)
        if sections:
            anonymizer = self.anonymizer if self._anonymizes(stage) else None
            context = visible_context(
                seat,
                sections,
                self.seats,
                anonymizer,
                ballot_style=isinstance(stage, RankingStage),
                revealer=None if anonymizer else self.anonymizer,
            )
            prompt = f"{context}\n\n---\n\n{prompt}"
        evidence = self._evidence(stage, seat, round_number)
        if evidence:
            prompt = f"{evidence}\n\n---\n\n{prompt}"
        earlier = self.follow_up.earlier.get(seat.name) if self.follow_up else None
        if earlier:  # a follow-up: this seat's own digest of the run before, first
            prompt = f"{earlier}\n\n---\n\n{prompt}"
        return [
            {"role": "system", "content": self._system[seat.name]},
            {"role": "user", "content": prompt},
        ]

    def _evidence(self, stage: SpeakingStage, seat: Seat, round_number: int) -> str:
        """The context documents this seat is shown in this stage: what fits its budget, else
        the passages its own query ranks first (the question, its card's focus, the stage's
        prompt), so seats with different focus read different passages."""
        if self.grounding is None:
            return ""
        card = seat.persona.fields
        focus = [card.description, card.domain or "", card.polarity or "", *card.framework]
        asked = self._stage_prompt(stage, seat, round_number)
        query = "\n".join([self.question, *focus, *card.asks, asked])
        budget = budget_chars(seat.model.model, self._max_tokens(stage, seat))
        passages = self.grounding.passages(seat.name, stage.id, query, budget)
        return self.grounding.block(passages)

    def ballot(self, stage: SpeakingStage, seat: Seat) -> dict[str, str]:
        """Labels ("Response B") -> seats this seat ranks: every other seat that answered."""
        ranked = self._latest.get(stage.sees[0], [])
        return {
            self.labels[t.seat].replace("Member", "Response"): t.seat
            for t in sorted(ranked, key=lambda t: self.labels.get(t.seat, ""))
            if t.ok and t.seat != seat.name and t.seat in self.labels
        }

    def _instruction(self, stage: SpeakingStage, seat: Seat) -> Instruction:
        """The format instruction the engine adds so replies parse, what it will parse, and the
        choices a well-formed reply picks from."""
        loop = self._loop_of(stage)
        if loop is not None and loop.until is not None and loop.until.moderator == stage.id:
            return MODERATOR_INSTRUCTION, "decision", ("STOP", "CONTINUE")
        text, expects, choices = self._kind(stage).instruction(self._state, stage, seat)
        if stage.evidence_labels:
            text = f"{text}\n\n{gates.EVIDENCE_INSTRUCTION}" if text else gates.EVIDENCE_INSTRUCTION
        if self.grounding is not None and stage.id == self.protocol.synthesis.id:
            asked = self.grounding.verdict_instruction()
            text = f"{text}\n\n{asked}" if text else asked
        return text, expects, choices

    def _max_tokens(self, stage: SpeakingStage, seat: Seat) -> int:
        cap = lengths.token_cap(stage, self.protocol.spec.max_tokens, self.sampling.max_tokens)
        return cap + lengths.reasoning_headroom(seat.reasoning_effort, seat.model.reasons)

    def _request(self, stage: SpeakingStage, seat: Seat, round_number: int) -> ModelRequest:
        instruction, expects, choices = self._instruction(stage, seat)
        instruction = lengths.stated(stage.words, instruction)  # the one place a limit is said
        return ModelRequest(
            stage=stage.id,
            messages=self._messages(stage, seat, round_number, instruction),
            max_tokens=self._max_tokens(stage, seat),
            temperature=self.sampling.temperature,
            seed=self._seat_seed(seat),
            seat=seat.name,
            kind=stage.kind,
            round=round_number,
            expects=expects,
            choices=choices,
            response_schema=self._schema(stage, seat),
            reasoning_effort=seat.reasoning_effort,
        )

    def _schema(self, stage: SpeakingStage, seat: Seat) -> dict[str, object] | None:
        loop = self._loop_of(stage)
        if loop is not None and loop.until is not None and loop.until.moderator == stage.id:
            return None  # a moderator writes its decision line, whatever its stage's kind
        return self._kind(stage).response_schema(self._state, stage, seat)

    def _seat_seed(self, seat: Seat) -> int | None:
        if self.sampling.seed is None:
            return None
        place = next((i for i, s in enumerate(self.panel) if s.name == seat.name), len(self.panel))
        return (self.sampling.seed + SEAT_SEED_STRIDE * place) % 2**31

    def _assistant_request(
        self, stage: SpeakingStage, seat: Seat, round_number: int, sample: int
    ) -> ModelRequest:
        """The request the seat was sent in this stage, under the plain assistant's system
        prompt instead of its card: one no-persona sample, seeded by its number."""
        request = self._request(stage, seat, round_number)
        return dataclasses.replace(
            request,
            stage=f"{stage.id}.baseline",
            seat="assistant",
            kind="baseline",
            seed=(self.sampling.seed or 0) + sample,
            messages=[
                {"role": "system", "content": ASSISTANT_SYSTEM_PROMPT},
                *request.messages[1:],
            ],
        )
