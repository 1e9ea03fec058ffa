"""Open-weight seats measured inside the model: an activation-recording seat backend
(``activations/<name>``), the assistant axis by contrast of means, and drift along it.

Needs the ``persona-council[activations]`` extra (transformers, gguf, accelerate); nothing
here imports torch or transformers until a model is loaded.
"""
