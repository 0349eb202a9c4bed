"""The JSON API for automation and CI, under /api/v1/: team bearer tokens, JSON in and out.

A layer beside views.py: it parses and authorizes, then calls the same selectors and services the
web pages use.
"""

from __future__ import annotations
