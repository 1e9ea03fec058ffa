"""An open-weight seat that generates with PyTorch and records its residual stream.

``activations/<name>`` model strings name a bundled GGUF model (the same files as
``local/<name>``, checked against the same SHA-256), dequantized into PyTorch by
``transformers``. Each reply is generated with the hidden states kept, and the turn records,
per chosen layer, the mean residual over the positions that produced the reply's tokens (the
last prompt position, then each reply token but the last): a few hundred numbers a layer, not
every tensor. With an assistant axis for the model (given, or stored by ``council axis build``)
the turn also records its projection on it.

torch and transformers are imported on first use only: ``import council`` stays light.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import math
import os
import threading
import time
import unittest.mock
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from council.base.errors import ConfigError, ModelCallError
from council.records.run import TurnActivations
from council.seats.local import LOCAL_PROVIDER, BundledModel, bundled_model, verified_path
from council.seats.model import ChatModel, Completion, ModelRequest, split_model_string

ACTIVATIONS_PROVIDER = "activations"
REQUIRED = ("torch", "transformers", "gguf", "accelerate")
INSTALL_HINT = "pip install 'persona-council[activations]' (transformers, gguf, accelerate)"


def missing_packages() -> list[str]:
    """The packages the activation backend needs that are not installed (none imported)."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def require_packages() -> None:
    missing = missing_packages()
    if missing:
        raise ConfigError(f"the activation backend needs {', '.join(missing)}: {INSTALL_HINT}")


@dataclass(frozen=True)
class Cap:
    """Activation capping: at hidden-state ``layer`` (the output of block ``layer - 1``) the
    projection on ``direction`` (unit, measured from ``origin``) is clamped to at most
    ``ceiling`` at every position but the prompt's first (the attention sink); the part
    orthogonal to the direction is left alone."""

    layer: int
    direction: tuple[float, ...]
    origin: tuple[float, ...]
    ceiling: float

    @classmethod
    def on(cls, axis: Any, ceiling: float) -> Cap:
        """A cap at ``ceiling`` along an assistant axis, at the axis's layer."""
        return cls(axis.layer, tuple(axis.direction), tuple(axis.origin), float(ceiling))


def clamp_along(hidden: Any, direction: Any, origin: Any, ceiling: float) -> Any:
    """``hidden`` (rows of vectors; numpy or torch) with each row's projection on the unit
    ``direction`` from ``origin`` clamped at ``ceiling``."""
    excess = ((hidden - origin) @ direction - ceiling).clip(min=0)
    return hidden - excess[..., None] * direction


@dataclass(frozen=True)
class Reply:
    """One generated reply and the mean residual over it at every layer (row 0: embeddings)."""

    text: str
    layer_means: Any  # numpy array, (layers + 1, hidden size)
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    positions: Any = None  # with keep_layer: that layer at each reply position, (tokens, hidden)


class ActivationReader:
    """One bundled model loaded into PyTorch; replies are generated one at a time."""

    def __init__(self, model: BundledModel, *, threads: int | None = None) -> None:
        self.bundled = model
        # One thread unless told: on the shared 2-core machine two threads generated 2.7 to 4.7
        # tokens/s against 14.9 for one (threads that wait on each other stall under load).
        self.threads = threads or int(os.environ.get("COUNCIL_TORCH_THREADS", "1"))
        self._lock = threading.RLock()  # load() may be asked for while a reply holds it
        self._model: Any = None
        self._tokenizer: Any = None
        self.load_seconds: float | None = None

    @property
    def sha256(self) -> str:
        return self.bundled.sha256

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        require_packages()
        start = time.perf_counter()
        path = verified_path(self.bundled)  # the file's SHA-256 is checked before it is read
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.utils.logging.set_verbosity_error()
        torch.set_num_threads(self.threads)
        from transformers import modeling_gguf_pytorch_utils as gguf_loading

        # No progress bars on a seat's stderr: transformers' own are switched off for the load,
        # and the GGUF dequantizer draws one of its own with no option to turn it off.
        bars = transformers.utils.logging.is_progress_bar_enabled()
        transformers.utils.logging.disable_progress_bar()
        quiet = functools.partial(gguf_loading.tqdm, disable=True)
        try:
            with unittest.mock.patch.object(gguf_loading, "tqdm", quiet):
                self._tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
                model = AutoModelForCausalLM.from_pretrained(
                    path.parent, gguf_file=path.name, dtype=torch.float32
                )
        finally:
            if bars:
                transformers.utils.logging.enable_progress_bar()
        self._model = model.eval()
        self.load_seconds = time.perf_counter() - start

    @property
    def num_layers(self) -> int:
        self.load()
        return int(self._model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        self.load()
        return int(self._model.config.hidden_size)

    def respond(
        self,
        messages: list[dict[str, str]],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        record: bool = True,
        cap: Cap | None = None,
        keep_layer: int | None = None,
    ) -> Reply:
        """Generate a reply; with ``record`` also average the residual stream over it (and keep
        layer ``keep_layer`` at every reply position); with ``cap`` clamp the residual along a
        direction while generating."""
        self.load()
        import torch

        with self._lock, torch.inference_mode(), self._capping(cap):
            start = time.perf_counter()
            encoded = self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
            )
            prompt = encoded["input_ids"]
            sampling: dict[str, Any] = {"do_sample": False}
            if temperature > 0:
                torch.manual_seed(seed if seed is not None else 0)
                sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0}
            out = self._model.generate(
                prompt,
                attention_mask=encoded["attention_mask"],
                max_new_tokens=max_new_tokens,
                output_hidden_states=record,
                return_dict_in_generate=True,
                pad_token_id=self._tokenizer.eos_token_id,
                **sampling,
            )
            generated = out.sequences[0, prompt.shape[1] :]
            text = self._tokenizer.decode(generated, skip_special_tokens=True).strip()
            means = _reply_means(out.hidden_states) if record else None
            positions = None
            if record and keep_layer is not None:
                positions = _reply_positions(out.hidden_states, keep_layer)
            return Reply(
                text,
                means,
                int(prompt.shape[1]),
                int(generated.shape[0]),
                time.perf_counter() - start,
                positions,
            )

    @contextlib.contextmanager
    def _capping(self, cap: Cap | None) -> Iterator[None]:
        if cap is None:
            yield
            return
        import torch

        top = int(self._model.config.num_hidden_layers)  # the caller holds the lock: no load()
        if not 0 < cap.layer < top:  # the last hidden state is taken after the final norm
            raise ConfigError(f"cannot cap layer {cap.layer}: this model has 1..{top - 1}")
        direction = torch.tensor(cap.direction, dtype=torch.float32)
        origin = torch.tensor(cap.origin, dtype=torch.float32)

        def clamp(hidden: Any) -> Any:
            capped = clamp_along(hidden, direction, origin, cap.ceiling)
            if hidden.shape[-2] > 1:
                # The prompt's first position is the attention sink: a massive activation (norm
                # about 25000 against a median of 150 on SmolLM2, projection about +5800) that
                # every later position attends to. Clamping it wrecks the whole reply (it
                # loops), so it is left alone; during generation one new position is fed.
                capped[..., 0, :] = hidden[..., 0, :]
            return capped

        def hook(module: Any, args: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (clamp(output[0]), *output[1:])
            return clamp(output)

        # Prepended, so the hidden states transformers records are the capped ones.
        block = self._model.model.layers[cap.layer - 1]
        handle = block.register_forward_hook(hook, prepend=True)
        try:
            yield
        finally:
            handle.remove()


def _reply_means(steps: Sequence[Sequence[Any]]) -> Any:
    """Average each layer over the positions that produced the reply's tokens: the prompt's
    last position (step 0), then one position per later step (the KV cache feeds one token)."""
    import torch

    per_step = [torch.stack([layer[0, -1, :] for layer in step]) for step in steps]
    return torch.stack(per_step).mean(dim=0).to(torch.float64).numpy()


def _reply_positions(steps: Sequence[Sequence[Any]], layer: int) -> Any:
    """One layer at the same positions ``_reply_means`` averages over, one row each."""
    import torch

    rows = [step[layer][0, -1, :] for step in steps]
    return torch.stack(rows).to(torch.float64).numpy()


@cache
def shared_reader(name: str) -> ActivationReader:
    """One loaded copy per bundled model in a process, whichever seats speak through it."""
    return ActivationReader(bundled_model(f"{LOCAL_PROVIDER}/{name}"))


def _rounded(row: Any) -> list[float]:
    return [round(float(v), 4) for v in row]


def parse_cap(text: str) -> tuple[str, float]:
    """``"p90"`` -> ("percentile", 90.0); ``"-3.5"`` -> ("ceiling", -3.5)."""
    value = text.strip()
    try:
        if value[:1].lower() == "p":
            percentile = float(value[1:])
            if 0 < percentile <= 100:
                return "percentile", percentile
        elif math.isfinite(ceiling := float(value)):  # 'nan' and 'inf' parse, but cap nothing
            return "ceiling", ceiling
    except ValueError:
        pass
    raise ConfigError(
        f"activation cap '{text}': expected pN (a percentile of the axis's persona replies, "
        "0 < N <= 100) or a finite number (a ceiling on the projection)"
    )


def axis_cap(axis: Any, percentile: float) -> Cap:
    """A cap on ``axis`` at a percentile of its persona replies' projections: a seat so
    capped cannot drift further toward the default assistant than most personas sit."""
    if axis is None:
        raise ConfigError("capping needs an assistant axis: run 'council axis build' first")
    if not 0 <= percentile <= 100:
        raise ConfigError(f"cap percentile {percentile} is not between 0 and 100")
    persona = [s.projection for s in axis.samples if s.side == "persona"]
    ceiling = float(np.percentile(persona, percentile))
    return Cap.on(axis, ceiling)


class ActivationModel(ChatModel):
    """A seat model on a bundled open-weight model that records its activations per turn.

    ``layers`` are the residual layers kept (default: the axis's layer, else the middle one);
    ``axis`` is projected on when given, else the axis stored for this model if there is one;
    ``cap_percentile`` caps the seat's projection on it at that percentile of the axis's
    persona replies while it generates; ``cap`` says the same as text (``"p90"``), or gives
    the ceiling itself (a number, e.g. the one ``council experiment capping`` calibrated).
    """

    def __init__(
        self,
        model: str,
        *,
        layers: Sequence[int] = (),
        axis: Any = None,
        reader: ActivationReader | None = None,
        axis_dir: str | os.PathLike[str] | None = None,
        cap_percentile: float | None = None,
        cap: str | float | None = None,
    ) -> None:
        provider, name = split_model_string(model)
        if provider != ACTIVATIONS_PROVIDER:
            raise ConfigError(f"'{model}' is not an {ACTIVATIONS_PROVIDER}/<name> model string")
        bundled_model(f"{LOCAL_PROVIDER}/{name}")  # an unknown name fails now, with the choices
        if reader is None:
            require_packages()
            reader = shared_reader(name)
        self.model = model
        self.reader = reader
        if axis is None:
            from council.records.axis import stored_axis

            axis = stored_axis(f"{LOCAL_PROVIDER}/{name}", axis_dir)
        self.axis = axis
        self._layers = list(layers)
        self.cap = None if cap_percentile is None else axis_cap(axis, cap_percentile)
        if cap is not None:
            self.cap = self._cap(cap)

    def _cap(self, cap: str | float) -> Cap:
        how, value = parse_cap(str(cap))
        if how == "percentile":
            return axis_cap(self.axis, value)
        if self.axis is None:
            raise ConfigError("capping needs an assistant axis: run 'council axis build' first")
        return Cap.on(self.axis, value)

    def layers(self) -> list[int]:
        if self._layers:
            chosen = self._layers
        else:
            chosen = [self.axis.layer] if self.axis is not None else [self.reader.num_layers // 2]
        top = self.reader.num_layers
        for layer in chosen:
            if not 0 <= layer <= top:
                raise ConfigError(f"layer {layer} is out of range: this model has 0..{top}")
        return chosen

    async def complete(self, request: ModelRequest) -> Completion:
        try:
            reply = await asyncio.to_thread(
                self.reader.respond,
                request.messages,
                max_new_tokens=request.max_tokens,
                temperature=request.temperature,
                seed=request.seed,
                cap=self.cap,
            )
        except ConfigError as exc:
            raise ModelCallError(str(exc), retryable=False, attempts=1) from None
        return Completion(
            content=reply.text,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            cost_usd=0.0,
            activations=self.activations_of(reply),
            # generate() stops at the end-of-reply token or at max_new_tokens: a reply that
            # used every token it was allowed was cut off there.
            finish_reason="length" if reply.completion_tokens >= request.max_tokens else "stop",
        )

    def activations_of(self, reply: Reply) -> TurnActivations:
        layers = self.layers()
        means = np.asarray(reply.layer_means)
        projection = None
        if self.axis is not None:
            projection = round(float(self.axis.project(means[self.axis.layer])), 4)
        return TurnActivations(
            model_sha256=self.reader.sha256,
            layers=layers,
            means=[_rounded(means[layer]) for layer in layers],
            tokens=reply.completion_tokens,
            axis_id=self.axis.axis_id if self.axis is not None else None,
            axis_layer=self.axis.layer if self.axis is not None else None,
            axis_projection=projection,
            axis_cap=self.cap.ceiling if self.cap is not None else None,
        )
