"""Exceptions that carry a message meant for the user: what each one also is."""

from __future__ import annotations

from core.errors import ArchitectureError


def test_architecture_error_is_a_value_error():
    assert issubclass(ArchitectureError, ValueError)
