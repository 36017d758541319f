"""The data side: paths, artifacts, checkpoints, the landing contract, quarantine and the warehouse."""

__all__ = ["artifacts", "big_arrays", "checkpoints", "contract", "paths", "quarantine", "stream", "warehouse"]
