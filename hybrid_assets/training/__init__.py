"""Training: reduced embeddings, the circuit artifact, quantum and classical kernels, tuning, the
quantum SVM, the classical baseline and the variational classifier.

Public surface: ``defs`` (this slice's assets and checks).
"""

__all__ = ["defs"]


def __getattr__(name: str):
    """``defs`` on first use (PEP 562): importing one of this slice's modules (the CLIs import the
    registry, say) does not build every asset of the slice and import their libraries."""
    if name == "defs":
        from hybrid_assets.training.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
