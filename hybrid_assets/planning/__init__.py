"""Planning: what each kernel route (pairwise, projected, Nystrom) would submit for the current
data on the configured device, priced and timed before anything runs.

Public surface: ``defs`` (the kernel_route_plan and provider_scorecard assets and their job).
"""

from hybrid_assets.common.slice_defs import defs_on_first_use

__all__ = ["defs"]

__getattr__ = defs_on_first_use(__name__)
