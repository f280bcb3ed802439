"""Tickets: create, list and search, read, change, soft delete and restore."""
