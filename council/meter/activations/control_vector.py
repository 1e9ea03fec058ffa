"""The assistant axis as a llama.cpp control vector: steering where llama.cpp cannot clamp.

llama.cpp has no hook to clamp a projection, but it adds *control vectors* to a layer's output
(``llama-server --control-vector-scaled FILE SCALE``, or ``llama_set_adapter_cvec``). Exported
here, the axis direction times ``-strength`` pushes every position toward the persona side by a
fixed amount: steering, not capping (it moves positions that never drifted too), the nearest
thing llama.cpp supports.

The file is what llama.cpp's ``common_control_vector_load`` reads: a GGUF file of architecture
``controlvector`` with one F32 tensor ``direction.N`` per layer. Layer numbering differs by
one: council's layer L is the hidden state after L blocks (``hidden_states[L]`` in
transformers), which llama.cpp calls the output of layer L - 1, so the tensor is
``direction.{L - 1}``; llama.cpp cannot steer the first block's output (N = 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from council.base.errors import ConfigError
from council.records.axis import AssistantAxis

ARCHITECTURE = "controlvector"


def llama_cpp_layer(axis: AssistantAxis) -> int:
    """The llama.cpp layer index whose output is the axis's hidden state."""
    if axis.layer < 2:
        raise ConfigError(
            f"llama.cpp cannot steer layer {axis.layer}: control vectors start after block 2"
        )
    return axis.layer - 1


def control_vector(axis: AssistantAxis, strength: float) -> np.ndarray:
    """``strength`` along the axis toward the persona side (positive strength), float32."""
    return (-strength * np.asarray(axis.direction, dtype=np.float64)).astype(np.float32)


def write_control_vector(axis: AssistantAxis, path: Path, *, strength: float) -> Path:
    """Write the axis as a llama.cpp control vector file."""
    import gguf

    if strength == 0:
        raise ConfigError("--strength 0 steers nothing")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, ARCHITECTURE)
    writer.add_string(f"{ARCHITECTURE}.model_hint", axis.model)
    writer.add_uint32(f"{ARCHITECTURE}.layer_count", 1)
    writer.add_string("council.axis_id", axis.axis_id)
    writer.add_string("council.model_sha256", axis.model_sha256)
    writer.add_float32("council.strength", float(strength))
    writer.add_tensor(f"direction.{llama_cpp_layer(axis)}", control_vector(axis, strength))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def read_control_vector(path: Path) -> dict[int, np.ndarray]:
    """llama.cpp layer -> vector, as llama.cpp would read the file (for checks and tests)."""
    import gguf

    reader = gguf.GGUFReader(path)
    architecture = reader.fields["general.architecture"]
    if bytes(architecture.parts[-1]).decode() != ARCHITECTURE:
        raise ConfigError(f"{path}: not a control vector file")
    vectors = {}
    for tensor in reader.tensors:
        prefix, _, layer = tensor.name.partition(".")
        if prefix == "direction" and layer.isdigit():
            vectors[int(layer)] = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
    return vectors
