"""Serving: the model registry and approvals, scoring files and the Redis stream (cheap first),
labels arriving later, and the serving dashboard.

Public surface: ``defs`` (this slice's assets, jobs and sensors).
"""

from hybrid_assets.serving.definitions import defs

__all__ = ["defs"]
