"""Evaluation: quantum vs classical with a confidence interval, the promotion gates, the report
and the promoted model.

Public surface: ``defs`` (this slice's assets and checks).
"""

from hybrid_assets.evaluation.definitions import defs

__all__ = ["defs"]
