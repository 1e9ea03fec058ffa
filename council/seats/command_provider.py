"""The ``cli`` provider in litellm: command seats' calls (``council.seats.commands``) made by
``litellm.acompletion`` like any other model's.

Registered in ``litellm.custom_provider_map`` by ``register`` when council imports litellm
(``litellm_model.import_litellm``), so every process that calls a model knows it. Each call
carries its command in its parameters, so the provider keeps no state of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM, CustomLLMError

from council.seats.commands import (
    CLI_PROVIDER,
    PARAM,
    CommandFailed,
    CommandSpec,
    prompt_text,
    run_command,
)

# A failed command is a failed call that a retry will not fix (nyk's rule: a non-zero exit or
# an empty reply fails the call; the fallback takes over); a missing program is "not found".
_STATUS = {"missing": 404, "exit": 400, "empty": 400, "flood": 400, "timeout": 400}


def _command(model: str, optional_params: dict[str, Any]) -> tuple[CommandSpec, str | None]:
    carried = optional_params.get(PARAM)
    if not isinstance(carried, dict):
        raise CustomLLMError(400, f"'{CLI_PROVIDER}/{model}' was called without its command")
    return CommandSpec.from_params(carried["spec"]), carried.get("model")


def _seconds(timeout: Any) -> float | None:
    return float(timeout) if isinstance(timeout, int | float) else None


class CommandLLM(CustomLLM):
    """Runs the command a call carries; its stdout is the reply."""

    async def _pieces(
        self, model: str, messages: list[Any], optional_params: dict[str, Any], timeout: Any
    ) -> AsyncIterator[str]:
        spec, chosen = _command(model, optional_params)
        try:
            async for piece in run_command(
                spec, chosen, prompt_text(messages), timeout_s=_seconds(timeout)
            ):
                yield piece
        except CommandFailed as failed:
            raise CustomLLMError(_STATUS[failed.kind], str(failed)) from None

    async def acompletion(  # type: ignore[override]
        self,
        model: str,
        messages: list[Any],
        api_base: str,
        custom_prompt_dict: dict[str, Any],
        model_response: Any,
        print_verbose: Any,
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict[str, Any],
        timeout: Any = None,
        **_: Any,
    ) -> Any:
        text = "".join([p async for p in self._pieces(model, messages, optional_params, timeout)])
        model_response.choices[0].message.content = text
        prompt = litellm.token_counter(messages=messages)
        reply = litellm.token_counter(text=text)
        model_response.usage = litellm.Usage(
            prompt_tokens=prompt, completion_tokens=reply, total_tokens=prompt + reply
        )
        return model_response

    async def astreaming(  # type: ignore[override]
        self,
        model: str,
        messages: list[Any],
        api_base: str,
        custom_prompt_dict: dict[str, Any],
        model_response: Any,
        print_verbose: Any,
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict[str, Any],
        timeout: Any = None,
        **_: Any,
    ) -> AsyncIterator[Any]:
        async for piece in self._pieces(model, messages, optional_params, timeout):
            yield {
                "text": piece,
                "is_finished": False,
                "finish_reason": "",
                "usage": None,
                "index": 0,
                "tool_use": None,
            }
        # No usage: litellm counts the prompt and the reply, as for any server that sends none.
        yield {
            "text": "",
            "is_finished": True,
            "finish_reason": "stop",
            "usage": None,
            "index": 0,
            "tool_use": None,
        }


def register(module: Any = litellm) -> None:
    """Make ``cli/...`` model strings reach ``CommandLLM`` (once a process)."""
    if any(entry.get("provider") == CLI_PROVIDER for entry in module.custom_provider_map):
        return
    module.custom_provider_map = [
        *module.custom_provider_map,
        {"provider": CLI_PROVIDER, "custom_handler": CommandLLM()},
    ]
    setup = getattr(module.utils, "custom_llm_setup", None)
    if setup is not None:
        setup()
