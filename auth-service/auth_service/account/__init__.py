"""Email verification and password reset: single-use tokens that travel only by email."""
