"""What several slices share: automation conditions, partitions, outputs and reports, the shared
gates, the one folder sensor, the bundled examples and the slices' ``defs`` on first use. No
assets live here."""

__all__ = ["automation", "circuits", "examples", "folder_sensor", "gates", "outputs", "partitions", "reporting",
           "slice_defs"]
