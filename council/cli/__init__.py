"""The ``council`` command line."""
