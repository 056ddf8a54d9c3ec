"""gravity."""
