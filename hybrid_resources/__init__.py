"""What assets talk to: quantum backends, the kernel engine, the warehouse, artifact storage."""
