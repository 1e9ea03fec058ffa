"""The convene form's option inputs, generated from the options ``CouncilSpec`` marks ``WEB``:
one input per option, labelled from its key, explained by its field's description, its kind
from the field's type (a number within the field's bounds narrowed by the web's, a checkbox for
a switch, a menu for a choice of words, else text). The request model is generated from the
same options (``council.web.settings.ConveneRequest``), so the two cannot drift apart."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from council.records.options import Option
from council.web.settings import bounds


def label(option: Option) -> str:
    """``budget_tokens`` -> ``Budget tokens``."""
    return escape(option.key.replace("_", " ").capitalize())


def _number(option: Option, attrs: str, ceiling: float | None) -> str:
    found = bounds(option)
    low = found.get("ge", found.get("gt"))
    highs = [v for v in (found.get("le"), found.get("lt"), ceiling) if v is not None]
    high = min(highs) if highs else None
    step = "1" if option.annotation is int else "any"
    limits = "".join(
        f" {name}='{value:g}'" for name, value in (("min", low), ("max", high)) if value is not None
    )
    # Left blank, the option is not sent: the server's cap, or the spec's default, holds.
    hint = f"{ceiling:g}" if ceiling is not None else (option.default_words() or "")
    return (
        f"<input {attrs} type='number' step='{step}'{limits} data-option='number'"
        f" placeholder='{escape(hint)}'>"
    )


def _menu(option: Option, attrs: str) -> str:
    choices = "".join(
        f"<option value='{escape(str(word))}'"
        f"{' selected' if word == option.default else ''}>{escape(str(word))}</option>"
        for word in typing.get_args(option.annotation)
    )
    return f"<select {attrs} data-option='text'>{choices}</select>"


def option_input(option: Option, ceiling: float | None = None) -> str:
    """One option as a labelled input with its description; ``ceiling``: the server's cap."""
    key = escape(option.key)
    help_id = f"option-{key}-help"
    attrs = f"id='option-{key}' name='{key}' aria-describedby='{help_id}'"
    help_text = f"<span id='{help_id}' class='explain'>{escape(option.description)}</span>"
    if option.annotation is bool:
        checked = " checked" if option.default else ""
        box = f"<input {attrs} type='checkbox' data-option='flag'{checked}>"
        return f"<div class='option flag'><label>{box} {label(option)}</label>{help_text}</div>"
    if option.annotation in (int, float):
        control = _number(option, attrs, ceiling)
    elif typing.get_origin(option.annotation) is typing.Literal:
        control = _menu(option, attrs)
    elif option.shape == "list":  # comma-separated, sent as a list
        control = f"<input {attrs} type='text' data-option='list' placeholder='a.md, notes/*.csv'>"
    else:
        control = f"<input {attrs} type='text' data-option='text'>"
    return (
        f"<div class='option'><label for='option-{key}'>{label(option)}</label>"
        f"{control}{help_text}</div>"
    )


def option_inputs(web_options: Sequence[Option], ceilings: Mapping[str, Any]) -> str:
    """Every option's input, in the spec's order, in one fieldset."""
    inputs = "".join(option_input(o, ceilings.get(o.key)) for o in web_options)
    return (
        "<fieldset class='options'><legend>Options (a number left blank: the server's cap "
        f"or the council's default)</legend>{inputs}</fieldset>"
    )
