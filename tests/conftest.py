"""Shared test setup: the kairos pytest plugin (fixtures) is registered by its entry point."""
