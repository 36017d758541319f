"""The data side: paths, artifacts, checkpoints, the landing contract, quarantine and the warehouse."""
