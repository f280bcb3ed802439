"""Public routes of tenant-service, declared for the gateway's OpenAPI document."""
from shared.openapi import Operation

OPERATIONS: list[Operation] = []
