"""Shared test configuration. Area-specific fixtures live in tests/<area>/conftest.py.

Async tests call :func:`callops.testing.run_bounded` so that every one has an explicit timeout.
"""
