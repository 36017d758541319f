"""Serving: the model registry and approvals, scoring files and the Redis stream (cheap first),
labels arriving later, and the serving dashboard.

Public surface: ``defs`` (this slice's assets, jobs and sensors).
"""

__all__ = ["defs"]


def __getattr__(name: str):
    """``defs`` on first use (PEP 562): importing one of this slice's modules (the CLIs import the
    registry, say) does not build every asset of the slice and import their libraries."""
    if name == "defs":
        from hybrid_assets.serving.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
