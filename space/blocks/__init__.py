"""Block library: one block family per module."""
