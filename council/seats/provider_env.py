"""Which environment variables a model call reads, and which ones shape a warm worker.

A warm worker (``council.seats.warm``) is shared by every environment of one user and install;
it never inherits provider keys. Each call carries the provider variables of its own model
from the caller's environment (``call_variables``): litellm reads a provider's keys, bases and
versions from variables named after it (``OPENAI_API_KEY``, ``AZURE_API_VERSION``), or after
its vendor for the few listed in ``_VENDOR_PREFIXES``. A model whose provider is not named
(``gpt-4o``) carries every variable that looks like a provider's.

What litellm reads once, when it is imported (``LITELLM_*`` settings), and what shapes its
connections (proxies, certificate bundles) is the worker's own: ``worker_variables`` are part
of the worker's identity, so environments that differ there get different workers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Providers whose variables are not (only) named after the provider, as litellm reads them.
_VENDOR_PREFIXES: dict[str, tuple[str, ...]] = {
    "gemini": ("GEMINI_", "GOOGLE_"),
    "vertex_ai": ("VERTEX", "GOOGLE_"),
    "vertex_ai_beta": ("VERTEX", "GOOGLE_"),
    "bedrock": ("AWS_",),
    "sagemaker": ("AWS_",),
    "sagemaker_chat": ("AWS_",),
    "azure": ("AZURE_",),
    "azure_ai": ("AZURE_",),
    "azure_text": ("AZURE_",),
    "together_ai": ("TOGETHERAI_", "TOGETHER_"),
    "perplexity": ("PERPLEXITYAI_", "PERPLEXITY_"),
    "huggingface": ("HUGGINGFACE_", "HF_"),
    "openrouter": ("OPENROUTER_", "OR_"),
    "cohere": ("COHERE_", "CO_"),
    "cohere_chat": ("COHERE_", "CO_"),
    "ollama_chat": ("OLLAMA_",),
    "ai21_chat": ("AI21_",),
    "text-completion-openai": ("OPENAI_",),
    "text-completion-codestral": ("CODESTRAL_",),
    "text-completion-inception": ("INCEPTION_",),
    "watsonx": ("WATSONX_", "WX_"),
    "watsonx_text": ("WATSONX_", "WX_"),
    "github": ("GITHUB_",),
    "github_copilot": ("GITHUB_COPILOT_",),
}
# A provider's variable, whoever the provider: what a model with no provider named carries.
_PROVIDER_NAME = re.compile(
    r"(_API_KEY|_API_BASE|_BASE_URL|_API_VERSION|_API_TOKEN|_ORGANIZATION|_PROJECT|_LOCATION)$"
    r"|^(AWS_|AZURE_|VERTEX|GOOGLE_|OPENAI_|ANTHROPIC_)"
)
# Read by litellm (or the HTTP clients under it) once, or per connection: the worker's own.
_CONNECTION = {
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_VERIFY", "SSL_CERTIFICATE",
}  # fmt: skip
_CREDENTIAL = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$", re.IGNORECASE)


def provider_of(model: str) -> str:
    """The provider a model string names (``openai/gpt-4o`` -> ``openai``), or ``""``."""
    provider, slash, _ = model.partition("/")
    return provider if slash else ""


def prefixes(provider: str) -> tuple[str, ...]:
    """The name prefixes of ``provider``'s variables: its own name, and its vendor's."""
    own = provider.upper().replace("-", "_") + "_"
    return (own, *_VENDOR_PREFIXES.get(provider, ()))


def call_variables(model: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``environ`` (default: this process's) that a call to ``model`` reads."""
    environ = os.environ if environ is None else environ
    provider = provider_of(model)
    if provider:
        wanted = prefixes(provider)
        chosen = {name: value for name, value in environ.items() if name.startswith(wanted)}
    else:
        chosen = {name: value for name, value in environ.items() if _PROVIDER_NAME.search(name)}
    return {name: value for name, value in chosen.items() if not is_worker_variable(name)}


def is_worker_variable(name: str) -> bool:
    """Whether ``name`` shapes the worker itself (never a credential: those travel per call)."""
    if name.upper() in _CONNECTION:
        return True
    settings = name.startswith("LITELLM_") and not name.startswith("LITELLM_PROXY_")
    return settings and not _CREDENTIAL.search(name)


def is_credential(name: str) -> bool:
    """Whether a variable named so holds a secret (kept out of every message)."""
    return bool(_CREDENTIAL.search(name))


def worker_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``environ`` that a worker takes from the environment that starts it."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in environ.items() if is_worker_variable(name)}
