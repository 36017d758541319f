"""The quantum side: backends (device construction in one place), feature-map circuits, the numpy
simulator, the kernel engine and its cache, and the variational classifier."""
