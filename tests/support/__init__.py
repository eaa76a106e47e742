"""Helpers the test tiers share: running the services as processes (`pipeline`),
streams to feed them (`streams`), TLS material (`certs`), unique names and paths.

Tests import from here (and from `devtools`), never from ``conftest``: fixtures live in
conftest, everything a fixture or a test calls lives here.
"""
