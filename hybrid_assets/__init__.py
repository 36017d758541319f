"""What is computed and in which order: one folder per domain slice (assets, checks, sensors,
jobs and the logic only it uses), ``common`` for what slices share, ``cli`` for the console scripts,
and ``definitions.defs``, the one Definitions of the code location."""

__all__ = ["cli", "common", "definitions", "evaluation", "executors", "hardware", "ingest", "optimization",
           "planning", "resources", "serving", "training"]
