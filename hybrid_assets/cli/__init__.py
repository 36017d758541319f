"""The console scripts: ``hybrid-demo``, ``hybrid-audit``, ``hybrid-registry`` and ``hybrid-plan``.

Each parses its arguments first: ``--help`` prints usage and exits 0 without touching data or
the instance."""

__all__ = ["audit", "demo", "demo_run", "pattern3_process", "plan", "registry"]
