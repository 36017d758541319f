"""Training: reduced embeddings, the circuit artifact, quantum and classical kernels, tuning, the
quantum SVM, the classical baseline and the variational classifier.

Public surface: ``defs`` (this slice's assets and checks).
"""

from hybrid_assets.training.definitions import defs

__all__ = ["defs"]
