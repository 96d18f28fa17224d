"""TrioToK: a supervised actor platform for multi-tenant content and commerce on trio."""

from ._exceptions import TriotokError as TriotokError

__version__ = "0.1.0"

__all__ = ("TriotokError", "__version__")
