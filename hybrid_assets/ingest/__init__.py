"""Ingest: landing files -> ``raw_samples`` (one partition per file, or quarantine) -> ``features``.

Public surface: ``defs`` (this slice's assets, the ingest job and the landing sensor).
"""

from hybrid_assets.ingest.definitions import defs

__all__ = ["defs"]
