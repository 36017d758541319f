"""Planning: what each kernel route (pairwise, projected, Nystrom) would submit for the current
data on the configured device, priced and timed before anything runs.

Public surface: ``defs`` (the kernel_route_plan and provider_scorecard assets and their job).
"""

from hybrid_assets.planning.definitions import defs

__all__ = ["defs"]
