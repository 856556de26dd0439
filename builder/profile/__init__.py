"""Profiles of the instrumented variants: perf and uftrace runs as folded stacks, groups, flame graphs."""
