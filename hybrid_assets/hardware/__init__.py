"""Hardware: the tuned kernel under device noise on a density-matrix simulator (before paying),
and the paid evaluation on a managed device, within budget and with an approval.

Public surface: ``defs`` (this slice's assets and the hardware_evaluation job).
"""

__all__ = ["defs"]


def __getattr__(name: str):
    """``defs`` on first use (PEP 562): importing one of this slice's modules (the CLIs import the
    registry, say) does not build every asset of the slice and import their libraries."""
    if name == "defs":
        from hybrid_assets.hardware.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
