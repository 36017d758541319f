"""Evaluation: quantum vs classical with a confidence interval, the promotion gates, the report
and the promoted model.

Public surface: ``defs`` (this slice's assets and checks).
"""

from hybrid_assets.common.slice_defs import defs_on_first_use

__all__ = ["defs"]

__getattr__ = defs_on_first_use(__name__)
