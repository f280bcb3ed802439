"""The audit consumer: its own process (``python -m tenant_service.audit``) that records every
event of the bus in ``tenant.audit_event``, once per event id."""
