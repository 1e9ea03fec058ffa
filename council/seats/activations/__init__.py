"""An open-weight seat backend (``activations/<name>``): the bundled GGUF in PyTorch, recording
each turn's mean residual activations and, given an axis, capping them. What is measured from
the recordings (the axis, drift along it) is the meter's (``council/meter/activations/``).

Needs the ``persona-council[activations]`` extra (transformers, gguf, accelerate); nothing
here imports torch or transformers until a model is loaded.
"""
