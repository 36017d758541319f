"""Partitions: one dynamic partition per landing file (key from its file name)."""

from dagster import DynamicPartitionsDefinition

landing_files_partitions = DynamicPartitionsDefinition(name="landing_files")
