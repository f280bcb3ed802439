"""The local read model of tenant-service's memberships and deleted organizations."""
