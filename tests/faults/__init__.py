"""Fault injection for tests, and `tests/faults/test_*`: proof that no crash, outage or flood
loses a deployment or leaves AWS in a state the dashboard does not know.

This package replaces the module `tests/faults.py` (a package shadows a module of the same name);
`from tests.faults import throttled` keeps working.
"""

from __future__ import annotations

from tests.faults.throttling import Body, throttled, throttling_response

__all__ = ["Body", "throttled", "throttling_response"]
