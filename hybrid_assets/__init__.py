"""What is computed and in which order: assets, checks, sensors, jobs and the one Definitions."""
