"""tenant-service."""
