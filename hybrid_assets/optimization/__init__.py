"""Optimization (pattern 3): a landing file -> problem -> QAOA circuit -> parameters -> samples ->
candidates ranked classically, beside the classical heuristics, for portfolios and max-cut.

Public surface: ``defs`` (both groups' assets, their jobs and landing sensors).
"""

from hybrid_assets.common.slice_defs import defs_on_first_use

__all__ = ["defs"]

__getattr__ = defs_on_first_use(__name__)
