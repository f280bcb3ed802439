"""Common library of the SaaS backend, imported by every process."""
