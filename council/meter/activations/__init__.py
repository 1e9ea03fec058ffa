"""What is measured from a seat's recorded activations: the assistant axis by contrast of
means (``axis.py``), drift along it with its statistics (``drift.py``, ``stats.py``), and the
axis written as a llama.cpp control vector (``control_vector.py``).

The backend that records activations and caps them is a seat (``council/seats/activations/``);
what is measured here reads only records and the axis files, never a model.
"""
