"""Event consumers of ticket-service, one module per stream."""
