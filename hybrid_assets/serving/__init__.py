"""Serving: the model registry and approvals, scoring files and the Redis stream (cheap first),
labels arriving later, and the serving dashboard.

Public surface: ``defs`` (this slice's assets, jobs and sensors).
"""

from hybrid_assets.common.slice_defs import defs_on_first_use

__all__ = ["defs"]

__getattr__ = defs_on_first_use(__name__)
