"""Benchmarks: the suite registry and its suites, cases, the runner, profiles, environment, statistics."""
