"""Optimization (pattern 3): a landing file -> problem -> QAOA circuit -> parameters -> samples ->
candidates ranked classically, beside the classical heuristics, for portfolios and max-cut.

Public surface: ``defs`` (both groups' assets, their jobs and landing sensors).
"""

from hybrid_assets.optimization.definitions import defs

__all__ = ["defs"]
