"""Ingest: landing files -> ``raw_samples`` (one partition per file, or quarantine) -> ``features``.

Public surface: ``defs`` (this slice's assets, the ingest job and the landing sensor).
"""

from hybrid_assets.common.slice_defs import defs_on_first_use

__all__ = ["defs"]

__getattr__ = defs_on_first_use(__name__)
