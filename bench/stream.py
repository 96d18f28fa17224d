"""``python -m bench stream``: the name the issue uses for ``bench/jetstream.py``."""

from bench.jetstream import main as main

__all__ = ("main",)
