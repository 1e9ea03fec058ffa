"""Real litellm calls to the loopback fake provider: usage, retries, error classes, secrets."""

from __future__ import annotations

import time

import pytest

from council.base.errors import ModelCallError
from council.base.secrets import REDACTED, redact
from council.seats import CallSettings, ModelRequest, make_model
from council.testing import FakeProvider
from council.testing.fake_provider import Reply

FAST = CallSettings(timeout_s=5, max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05)
REQUEST = ModelRequest(
    stage="opening",
    messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi?"}],
    max_tokens=20,
    temperature=0.0,
)


@pytest.fixture
def provider_reply() -> Reply:
    return "Hello from the fake provider."


def model_on(provider: FakeProvider, settings: CallSettings = FAST):  # type: ignore[no-untyped-def]
    return make_model(
        "openai/fake-model", endpoints={"openai/fake-model": provider.api_base}, settings=settings
    )


async def test_a_call_goes_through_litellm_and_records_usage(provider: FakeProvider) -> None:
    completion = await model_on(provider).complete(REQUEST)
    assert completion.content == "Hello from the fake provider."
    assert completion.prompt_tokens == 4 and completion.completion_tokens == 5
    assert completion.cost_usd is None  # an unmapped model has no known price
    assert completion.attempts == 1
    body = provider.requests[0]
    assert body["model"] == "fake-model" and body["max_tokens"] == 20
    assert body["messages"][1] == {"role": "user", "content": "Hi?"}


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_retryable_errors_are_retried(provider: FakeProvider, status: int) -> None:
    provider.fail_next(status)
    completion = await model_on(provider).complete(REQUEST)
    assert completion.attempts == 2
    assert provider.request_count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_client_errors_are_not_retried(provider: FakeProvider, status: int) -> None:
    provider.fail_next(status)
    with pytest.raises(ModelCallError) as err:
        await model_on(provider).complete(REQUEST)
    assert err.value.attempts == 1 and not err.value.retryable
    assert provider.request_count == 1


async def test_retries_stop_at_the_attempt_budget(provider: FakeProvider) -> None:
    provider.fail_next(503, 503, 503, 503)
    with pytest.raises(ModelCallError) as err:
        await model_on(provider).complete(REQUEST)
    assert err.value.attempts == 3 and err.value.retryable
    assert provider.request_count == 3
    assert "ServiceUnavailableError" in str(err.value) or "503" in str(err.value)


async def test_retry_after_lengthens_the_wait(provider: FakeProvider) -> None:
    provider.fail_next(429, retry_after=0.6)
    start = time.perf_counter()
    patient = CallSettings(timeout_s=5, max_attempts=3, backoff_initial_s=0.01, backoff_max_s=1)
    completion = await model_on(provider, patient).complete(REQUEST)
    assert completion.attempts == 2
    assert time.perf_counter() - start >= 0.5  # backoff alone would be ~0.01 s


async def test_a_hung_provider_times_out_and_is_retried() -> None:
    with FakeProvider("late", latency_s=1.5) as slow:
        settings = CallSettings(timeout_s=0.3, max_attempts=2, backoff_initial_s=0.01)
        with pytest.raises(ModelCallError) as err:
            await model_on(slow, settings).complete(REQUEST)
    assert err.value.attempts == 2 and err.value.retryable
    assert "Timeout" in str(err.value)


async def test_an_unreachable_server_is_a_connection_error() -> None:
    with FakeProvider() as gone:
        base = gone.api_base
    settings = CallSettings(timeout_s=2, max_attempts=2, backoff_initial_s=0.01)
    model = make_model("openai/x", endpoints={"openai/x": base}, settings=settings)
    with pytest.raises(ModelCallError, match="Connection") as err:
        await model.complete(REQUEST)
    assert err.value.attempts == 2


async def test_a_users_server_never_receives_a_provider_key(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-secret-key-0123456789")
    await model_on(provider).complete(REQUEST)
    sent = provider.headers[0]
    authorization = {k.lower(): v for k, v in sent.items()}.get("authorization", "")
    assert "sk-real-secret" not in authorization
    assert authorization == "Bearer no-key"


def test_redaction_of_keys_bearer_tokens_and_url_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret-value")
    text = (
        "failed with sk-ant-very-secret-value; Authorization: Bearer abcdefghijklmnop; "
        "url http://user:pa55word@127.0.0.1:9/v1"
    )
    cleaned = redact(text)
    assert "sk-ant-very-secret-value" not in cleaned
    assert "abcdefghijklmnop" not in cleaned and "pa55word" not in cleaned
    assert cleaned.count(REDACTED) == 3


def test_malformed_model_strings_are_refused() -> None:
    with pytest.raises(ValueError, match="provider/model"):
        make_model("gpt-4o")
