"""Helpers shared by the tests: real brokers, real files, real pseudo-terminals."""
