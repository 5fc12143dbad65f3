"""Adapters: turn Firebase triggers and callables into calls of the marketplace domain."""
