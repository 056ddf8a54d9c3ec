"""gravity/sandbox."""
