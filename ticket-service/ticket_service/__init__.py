"""ticket-service."""
