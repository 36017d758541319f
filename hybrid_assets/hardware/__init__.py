"""Hardware: the tuned kernel under device noise on a density-matrix simulator (before paying),
and the paid evaluation on a managed device, within budget and with an approval.

Public surface: ``defs`` (this slice's assets and the hardware_evaluation job).
"""

from hybrid_assets.common.slice_defs import defs_on_first_use

__all__ = ["defs"]

__getattr__ = defs_on_first_use(__name__)
