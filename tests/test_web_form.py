"""The web app's convene options are generated from ``CouncilSpec`` (issue 25): one input per
option marked ``WEB``, with its description; the request model takes exactly those options,
within the spec's bounds narrowed by the web's; an option submitted from the form reaches the
council's recorded spec; a value out of bounds is refused with one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from cdp import audit, browser_page, set_width
from pydantic import BaseModel, Field, ValidationError
from test_security_web import Server, serve
from test_web import QUICK, keep

from council.records.options import Option, options
from council.records.spec import WEB, Public, public
from council.store.ledger import Ledger
from council.testing import FakeProvider
from council.web.form import option_inputs
from council.web.settings import ConveneChoices, ConveneRequest, bounds, convene_request

WEB_KEYS = [option.key for option in options(WEB)]


class Inputs(HTMLParser):
    """The form's option inputs (``data-option``) by name, and every element's text by id."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.text: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-option" in found:
            self.inputs[str(found["name"])] = {"tag": tag, **found}
        if tag == "span" and found.get("id"):
            self._open.append(str(found["id"]))
            self.text[str(found["id"])] = ""

    def handle_data(self, data: str) -> None:
        for name in self._open:
            self.text[name] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open:
            self._open.pop()


def parsed(page: str) -> Inputs:
    reader = Inputs()
    reader.feed(page)
    return reader


@pytest.fixture
def server(tmp_path: Path, provider: FakeProvider) -> Iterator[Server]:
    running = serve(tmp_path, provider)
    yield running
    running.stop()


def test_the_request_takes_exactly_the_web_options() -> None:
    generated = [
        key for key in ConveneRequest.model_fields if key not in ConveneChoices.model_fields
    ]
    assert generated == WEB_KEYS
    assert {"temperature", "budget_tokens", "max_tokens", "allow_absent"} <= set(WEB_KEYS)
    # Nothing that reaches a file, a URL or a key is a browser's to set.
    assert not {"endpoints", "seat_slots", "persona_dirs", "api_key_envs", "chair"} & set(WEB_KEYS)


def test_the_form_shows_one_input_per_web_option_with_its_description(server: Server) -> None:
    status, page = server.request("/", headers={"Accept": "text/html"})
    assert status == 200
    form = parsed(page)
    assert list(form.inputs) == WEB_KEYS
    for option in options(WEB):
        shown = form.inputs[option.key]
        assert form.text[str(shown["aria-describedby"])] == option.description, option.key
    assert form.inputs["allow_absent"]["type"] == "checkbox"
    assert "checked" in form.inputs["chair_fallback"]  # on by default, as in the spec
    assert form.inputs["similarity"]["tag"] == "select"
    temperature = form.inputs["temperature"]
    assert (temperature["type"], temperature["min"], temperature["max"]) == ("number", "0", "2")
    # A spending option's most is the server's cap, which a request may not pass.
    assert form.inputs["max_tokens"]["max"] == str(server.settings.max_tokens)
    assert form.inputs["budget_usd"]["placeholder"] == f"{server.settings.budget_usd:g}"


class Synthetic(BaseModel):
    """Fields as a new spec option would be written, marked for the web."""

    rounds: Annotated[
        int | None,
        Field(ge=1, le=9, description="how many rounds of debate"),
        public("rounds", WEB),
    ] = None
    tone: Annotated[
        Literal["calm", "sharp"], Field(description="how the chair writes"), public("tone", WEB)
    ] = "calm"


def synthetic_options() -> list[Option]:
    fields = Synthetic.model_fields
    return [
        Option(
            (name,), fields[name], next(m for m in fields[name].metadata if isinstance(m, Public))
        )
        for name in fields
    ]


def test_a_new_field_marked_web_is_in_the_form_and_the_request() -> None:
    new = synthetic_options()
    form = parsed(option_inputs([*options(WEB), *new], {}))
    assert list(form.inputs) == [*WEB_KEYS, "rounds", "tone"]
    rounds = form.inputs["rounds"]
    assert (rounds["type"], rounds["min"], rounds["max"], rounds["step"]) == (
        "number",
        "1",
        "9",
        "1",
    )
    assert form.text[str(rounds["aria-describedby"])] == "how many rounds of debate"
    assert form.inputs["tone"]["tag"] == "select"
    request = convene_request([*options(WEB), *new])
    asked = request(question="q", rounds=3, tone="sharp", temperature=0.2)
    assert asked.options_given() == {"temperature": 0.2, "rounds": 3, "tone": "sharp"}
    with pytest.raises(ValidationError, match="rounds"):
        request(question="q", rounds=10)
    with pytest.raises(ValidationError, match="tone"):
        request(question="q", tone="loud")


def beyond(option: Option) -> list[Any]:
    """A value of the wrong kind, and one just past each of the option's bounds."""
    found = bounds(option)
    values: list[Any] = ["many"] if option.annotation in (int, float) else [17]
    if "ge" in found:
        values.append(found["ge"] - 1)
    if "gt" in found:
        values.append(found["gt"])
    if "le" in found:
        values.append(found["le"] + 1)
    return values


@pytest.mark.parametrize(
    ("key", "value"), [(o.key, value) for o in options(WEB) for value in beyond(o)]
)
def test_a_value_out_of_bounds_is_refused_with_one_line(
    server: Server, provider: FakeProvider, key: str, value: Any
) -> None:
    status, text = server.request("/api/convene", {**QUICK, key: value})
    error = json.loads(text)["error"]
    assert status == 400 and error.startswith(f"{key}: ") and "\n" not in error, error
    assert provider.request_count == 0 and server.runs_started() == []


def test_a_value_past_the_servers_cap_is_refused(server: Server) -> None:
    status, text = server.request("/api/convene", {**QUICK, "budget_tokens": 600_000})
    assert status == 400
    assert json.loads(text)["error"] == (
        "budget_tokens: 600000 is more than this server allows (500000; council serve "
        "--budget-tokens raises it)"
    )


SET_OPTIONS = """(() => {
    const form = document.getElementById('convene');
    form.question.value = 'Should the library open on Sundays?';
    form.protocol.value = 'quick';
    for (const box of form.querySelectorAll('input[name=personas]')) {
        box.checked = ['popper', 'kuhn'].includes(box.value);
    }
    form.temperature.value = '0.3';
    form.seed.value = '7';
    form.budget_calls.value = '40';
    form.similarity.value = 'words';
    form.allow_absent.checked = true;
    form.chair_fallback.checked = false;
    form.requestSubmit();
})()"""


async def test_options_submitted_from_the_form_reach_the_recorded_spec(
    server: Server, provider: FakeProvider
) -> None:
    async with browser_page(width=1280, height=1000) as page:
        for width in (390, 1280):
            await set_width(page, width)
            await page.goto(server.base + "/")
            violations = [v for v in await audit(page) if v["impact"] in ("serious", "critical")]
            assert violations == [], violations
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
            await page.evaluate("document.querySelector('fieldset.options').scrollIntoView()")
            await keep(page, f"convene-options-{width}")
        await page.evaluate(SET_OPTIONS)
        await page.wait_for("document.body.dataset.runDone === 'true'", timeout_s=120)
        run_id = await page.evaluate("document.getElementById('run').dataset.run")
    ledger = Ledger.existing(server.settings.runs_dir)
    spec = json.loads((ledger.run(run_id) or {})["config"])["spec"]
    ledger.close()
    assert spec["sampling"] == {"temperature": 0.3, "seed": 7, "max_tokens": 4096}
    assert spec["budget"]["max_calls"] == 40 and spec["similarity"] == "words"
    assert spec["allow_absent"] is True and spec["calls"]["chair_fallback"] is False
    assert spec["panel_rules"] is True and spec["calls"]["continue_truncated"] is False
    assert {body["temperature"] for body in provider.requests} == {0.3}
    assert 7 in {body.get("seed") for body in provider.requests}  # each seat's seed from it
