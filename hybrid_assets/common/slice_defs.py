"""A slice package's ``defs``, built on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["defs_on_first_use"]


def defs_on_first_use(package: str) -> Callable[[str], Any]:
    """The module ``__getattr__`` (PEP 562) of slice ``package``: ``defs`` is
    ``<package>.definitions.defs``, imported when first asked for. Importing one module of the
    slice (the CLIs import the registry, say) then does not build every asset of the slice and
    import their libraries."""

    def __getattr__(name: str) -> Any:
        if name == "defs":
            return importlib.import_module(f"{package}.definitions").defs
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
