"""Training: reduced embeddings, the circuit artifact, quantum and classical kernels, tuning, the
quantum SVM, the classical baseline and the variational classifier.

Public surface: ``defs`` (this slice's assets and checks).
"""

from hybrid_assets.common.slice_defs import defs_on_first_use

__all__ = ["defs"]

__getattr__ = defs_on_first_use(__name__)
