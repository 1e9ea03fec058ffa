"""The assistant axis exported as a llama.cpp control vector: the file llama.cpp reads, and
(local_model) the same steering in llama.cpp and in PyTorch giving the same reply."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_activations import synthetic_axis

from council.base.errors import ConfigError
from council.cli.main import main

gguf = pytest.importorskip("gguf")

from council.meter.activations.control_vector import (  # noqa: E402
    llama_cpp_layer,
    read_control_vector,
    write_control_vector,
)


def test_the_axis_is_written_as_llama_cpp_reads_a_control_vector(tmp_path: Path) -> None:
    axis = synthetic_axis(layer=3)
    path = write_control_vector(axis, tmp_path / "axis.gguf", strength=2.5)
    vectors = read_control_vector(path)
    assert list(vectors) == [2]  # hidden state 3 is the output of llama.cpp's layer 2
    assert np.allclose(vectors[2], -2.5 * np.asarray(axis.direction), atol=1e-6)
    fields = gguf.GGUFReader(path).fields
    assert bytes(fields["controlvector.model_hint"].parts[-1]).decode() == axis.model
    assert bytes(fields["council.axis_id"].parts[-1]).decode() == axis.axis_id
    with pytest.raises(ConfigError, match="steers nothing"):
        write_control_vector(axis, tmp_path / "zero.gguf", strength=0)
    with pytest.raises(ConfigError, match="cannot steer layer 1"):
        llama_cpp_layer(synthetic_axis(layer=1))


def test_axis_export_writes_the_file_and_says_how_to_use_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    axis = synthetic_axis(layer=3)
    axis.save(tmp_path / "axis.json")
    out = tmp_path / "cv.gguf"
    assert (
        main(
            [
                "axis",
                "export",
                "--path",
                str(tmp_path / "axis.json"),
                "--control-vector",
                str(out),
                "--strength",
                "4",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "--control-vector-layer-range 2 2" in printed and out.is_file()
    assert (
        main(
            ["axis", "export", "--path", str(tmp_path / "none.json"), "--control-vector", str(out)]
        )
        == 2
    )
    assert "no axis at" in capsys.readouterr().err


@pytest.mark.local_model
def test_llama_cpp_steered_by_the_file_answers_as_pytorch_steered_by_a_hook(
    tmp_path: Path,
) -> None:
    """The layer numbering is the thing to get right: the vector llama.cpp adds from the file
    must land where council's PyTorch seat would add it, so both backends reply alike."""
    pytest.importorskip("transformers")
    import llama_cpp
    import torch

    from council.records.axis import AssistantAxis
    from council.seats.activations.backend import shared_reader
    from council.seats.local import bundled_model, verified_path

    reader = shared_reader("smollm2-135m-instruct")
    rng = np.random.default_rng(1)
    direction = rng.normal(size=reader.hidden_size)
    axis = AssistantAxis.model_construct(
        axis_id="random",
        model="local/smollm2-135m-instruct",
        model_sha256=reader.sha256,
        layer=15,
        direction=(direction / np.linalg.norm(direction)).tolist(),
        origin=[0.0] * reader.hidden_size,
    )
    vectors = read_control_vector(write_control_vector(axis, tmp_path / "cv.gguf", strength=40))
    messages = [{"role": "user", "content": "Should cities ban private cars from their centres?"}]

    llm = llama_cpp.Llama(
        model_path=str(verified_path(bundled_model("local/smollm2-135m-instruct"))),
        n_ctx=512,
        n_threads=1,
        verbose=False,
    )
    width, layers = llm.n_embd(), 30
    data = np.zeros(width * layers, dtype=np.float32)
    for layer, vector in vectors.items():  # the buffer starts at layer 1, as llama.cpp's does
        data[width * (layer - 1) : width * layer] = vector

    def llama_reply(steer: bool) -> str:
        pointer = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) if steer else None
        low, high = (min(vectors), max(vectors)) if steer else (0, 0)
        assert (
            llama_cpp.llama_set_adapter_cvec(
                llm.ctx, pointer, data.size if steer else 0, width, low, high
            )
            == 0
        )
        llm.reset()
        reply = llm.create_chat_completion(messages, max_tokens=8, temperature=0.0)
        return str(reply["choices"][0]["message"]["content"]).strip()

    added = torch.tensor(-40 * np.asarray(axis.direction), dtype=torch.float32)
    reader.load()
    block = reader._model.model.layers[axis.layer - 1]

    def add(module: object, args: object, output: Any) -> Any:
        return (output[0] + added, *output[1:]) if isinstance(output, tuple) else output + added

    handle = block.register_forward_hook(add, prepend=True)
    try:
        torch_steered = reader.respond(messages, max_new_tokens=8, record=False).text
    finally:
        handle.remove()
    steered, plain = llama_reply(True), llama_reply(False)
    assert steered != plain  # the vector does something in llama.cpp
    assert steered == torch_steered  # and the same thing as at council's layer in PyTorch
