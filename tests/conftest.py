"""Shared pytest configuration: every test has a timeout (see pyproject.toml)."""
