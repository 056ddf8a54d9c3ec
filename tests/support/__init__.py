"""Shared test helpers: the real servers tests run against, and small builders of clinic data."""
