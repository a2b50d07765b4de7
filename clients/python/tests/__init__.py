"""Tests of the Python client against the real server (``LUMINATE_BIN``)."""
