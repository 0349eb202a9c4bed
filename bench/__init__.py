"""Benchmarks: TinyStacks side by side with the tools teams use today (`make bench`)."""

from __future__ import annotations
