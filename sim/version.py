"""The version of cascadesim: in every run's manifest, every result row and every report's header.

A module of its own so that whoever records it imports it from here, never from the package
(``sim/__init__.py`` re-exports it as ``sim.__version__``).
"""

__all__ = ["VERSION"]

VERSION = "0.1.0"
