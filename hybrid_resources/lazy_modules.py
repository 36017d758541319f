"""Libraries imported when first used, not when the modules that use them are imported.

PennyLane takes about 1.7 s to import, and scikit-learn (with pandas) and SciPy about 1 s more
(SciPy's linear algebra alone, which the kernel diagnostics use, was a quarter of the 2 s of CPU
that loading the definitions took). Every process that loads the definitions imports the modules
that run circuits and fit models, but most of them never do either: code servers, the daemon's
ingest runs, ``hybrid-audit``. So a module that uses PennyLane throughout names it through
:func:`module_on_first_use` (``qml = module_on_first_use("pennylane")``), and a function that
uses a scikit-learn, SciPy or networkx name imports it in its body, as Qiskit and matplotlib
already are.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__all__ = ["DEFERRED", "import_deferred", "module_on_first_use"]


class _ModuleOnFirstUse(types.ModuleType):
    """Stands for the module ``__name__``: reading an attribute imports that module (once; later
    reads find it in ``sys.modules``) and returns the attribute from it."""

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)


def module_on_first_use(name: str) -> types.ModuleType:
    """A stand-in for module ``name`` (``qml = module_on_first_use("pennylane")``): ``qml.RX`` is
    ``pennylane.RX``, and nothing is imported until such an attribute is first read."""
    return _ModuleOnFirstUse(name)


DEFERRED = ("pennylane", "sklearn.cluster", "sklearn.datasets", "sklearn.ensemble", "sklearn.linear_model",
            "sklearn.metrics", "sklearn.model_selection", "sklearn.svm", "scipy.linalg", "scipy.sparse.linalg",
            "scipy.special", "scipy.stats", "networkx")
"""The libraries this project imports on first use (besides Qiskit, matplotlib and Great
Expectations, which only some steps need)."""


def import_deferred() -> None:
    """Import every module of :data:`DEFERRED` now: for a process that will use them all anyway
    and would rather pay for them up front (``hybrid-demo``, before it starts its clock)."""
    for name in DEFERRED:
        importlib.import_module(name)
