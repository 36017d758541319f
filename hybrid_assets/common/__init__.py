"""What several slices share: automation conditions, partitions, outputs and reports, the shared
gates, the one folder sensor and the bundled examples. No assets live here."""

__all__ = ["automation", "circuits", "examples", "folder_sensor", "gates", "outputs", "partitions", "reporting"]
