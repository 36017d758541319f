"""Planning: what each kernel route (pairwise, projected, Nystrom) would submit for the current
data on the configured device, priced and timed before anything runs.

Public surface: ``defs`` (the kernel_route_plan and provider_scorecard assets and their job).
"""

__all__ = ["defs"]


def __getattr__(name: str):
    """``defs`` on first use (PEP 562): importing one of this slice's modules (the CLIs import the
    registry, say) does not build every asset of the slice and import their libraries."""
    if name == "defs":
        from hybrid_assets.planning.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
