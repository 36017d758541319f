"""What assets talk to. ``quantum/``: backends, feature maps, simulator, kernel engine and cache, VQC.
``data/``: paths, artifacts, checkpoints, contract, quarantine, warehouse. At the top: the cost and
gate policies. Nothing here imports ``hybrid_assets``."""

__all__ = ["compute", "cost_policy", "gate_policy", "data", "optimization", "process_heap", "quantum"]
