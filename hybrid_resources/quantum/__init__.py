"""The quantum side: backends (device construction in one place), feature-map circuits, the numpy
simulator, the kernel engine, its requests, cache and latency models, the kernel routes' plans,
noise and mitigation, and the variational classifier."""

__all__ = ["backends", "dask_kernel", "execution", "feature_maps", "kernel_cache", "kernel_diagnostics", "kernel_engine",
           "kernel_request", "kernels", "latency", "noise", "nystrom", "planning", "projected_kernel", "simulator", "vqc"]
