"""Foundations: settings, money and the contracts that cross the Temporal boundary.

Everything else may import from here; this package imports nothing of the project.
"""
