"""What a warm council spends on itself per run and per turn (issue 29): the environment's
secrets are read once a run, not for every text redacted; a process embeds each member's
domain once, not at every run of every council. What each saves is measured by bench/run.py, never here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from council import Council
from council.app.choosing import KeptVectors, seat_by_domain
from council.base import secrets as secrets_module
from council.base.secrets import REDACTED, Redactor, redact
from council.meter.embedders import FakeEmbedder
from council.personas.library import find_persona
from council.records.events import EventList
from council.testing import FunctionModel

PANEL = ["popper", "kuhn", "meadows"]
QUESTION = "Should the city price congestion in its centre?"
KEY = "sk-test-secret-value-0123456789"


def test_a_redactor_redacts_as_redact_does_with_the_secrets_it_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    text = (
        f"failed with {KEY}; Authorization: Bearer abcdefghijklmnop; "
        "url http://user:pa55word@127.0.0.1:9/v1 <ssl.SSLContext object at 0x7f00>"
    )
    redactor = Redactor()
    assert redactor(text) == redact(text) and redactor(text).count(REDACTED) == 3
    assert redactor("the call key", extra=["call key"]) == f"the {REDACTED}"
    # Read when it was made: a variable set afterwards is not among its values.
    monkeypatch.setenv("LATE_TOKEN", "late-token-value-xyz")
    assert "late-token-value-xyz" in redactor("late-token-value-xyz")


def _every_pattern(text: str) -> str:
    """Redaction as it was before the patterns' pieces were looked for first."""
    text = secrets_module._BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = secrets_module._SSL_REPR.sub("", text)
    text = secrets_module._OBJECT_REPR.sub(r"<\1>", text)
    return secrets_module._URL_USERINFO.sub(REDACTED + "@", text)


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: BEARER abcdefghijklmnop and bearer\tqrstuvwxyz012",
        "api_key=abcdefgh1234 API-KEY: 'zyxwvutsrq' ApiKey\"abcdefghij\" apikey short",
        "a key point, the keys of the city, no secret here",
        "connect failed ssl:<ssl.SSLContext object at 0x7f3a> <a.b.Thing object at 0xdeadbeef>",
        "http://user:pa55word@127.0.0.1:9/v1 and ftp://x@y and https://example.org/a:b@c",
        "Kelvin \u212a: API\u212aEY=abcdefghijkl; BEARER\u212a",
        "",
    ],
)
def test_looking_for_each_patterns_piece_first_redacts_the_same(text: str) -> None:
    assert Redactor()(text) == _every_pattern(text)


def test_a_run_reads_the_environment_once_and_keeps_its_key_out_of_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    reads: list[int] = []
    real = secrets_module.secret_values

    def counted() -> list[str]:
        reads.append(1)
        return real()

    monkeypatch.setattr(secrets_module, "secret_values", counted)
    echo = FunctionModel(lambda request: f"My key is {KEY}, said the provider.")
    result = Council(
        PANEL, protocol="quick", model=echo, runs_dir=None, sinks=[EventList(wants_deltas=True)]
    ).convene(QUESTION)
    assert result.status == "completed" and len(result.turns) == 4
    assert len(reads) == 1  # not once per message, per turn or per streamed piece
    assert KEY not in result.model_dump_json()
    assert all(REDACTED in (turn.content or "") for turn in result.turns)


class CountingEncode:
    """An embedder's encode that counts the texts it was asked to embed."""

    def __init__(self) -> None:
        self.embedder = FakeEmbedder()
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> Any:
        self.texts.extend(texts)
        return self.embedder.encode(texts)


def test_kept_vectors_embed_each_text_once_and_answer_as_the_embedder_does() -> None:
    inner = CountingEncode()
    kept = KeptVectors(inner, size=4)
    first = kept(["a question", "a domain", "another domain"])
    again = kept(["a new question", "a domain", "another domain"])
    assert inner.texts == ["a question", "a domain", "another domain", "a new question"]
    direct = FakeEmbedder().encode(["a new question", "a domain", "another domain"])
    assert np.array_equal(again, direct) and np.array_equal(first[1:], again[1:])
    kept(["x", "y"])  # over its size: the least recently used ("a question") goes first
    kept(["a question"])
    assert inner.texts[-1] == "a question" and inner.texts.count("a domain") == 1


def test_the_domain_seat_is_the_same_with_kept_vectors() -> None:
    cards = [find_persona(name) for name in PANEL]
    encode = CountingEncode()
    kept = KeptVectors(encode)
    questions = [QUESTION, "How should a fishery set its catch limits?", QUESTION]
    for question in questions:
        assert seat_by_domain(question, cards, encode=kept) == seat_by_domain(
            question, cards, encode=FakeEmbedder().encode
        )
    # The members' domains were embedded once for the three runs, each question once.
    assert len(encode.texts) == len(cards) + 2
