"""Optimization (pattern 3): a landing file -> problem -> QAOA circuit -> parameters -> samples ->
candidates ranked classically, beside the classical heuristics, for portfolios and max-cut.

Public surface: ``defs`` (both groups' assets, their jobs and landing sensors).
"""

__all__ = ["defs"]


def __getattr__(name: str):
    """``defs`` on first use (PEP 562): importing one of this slice's modules (the CLIs import the
    registry, say) does not build every asset of the slice and import their libraries."""
    if name == "defs":
        from hybrid_assets.optimization.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
