"""Accord: unified commerce execution engine."""

__version__ = "0.1.0"
