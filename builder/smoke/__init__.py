"""Smoke tests: each program of a built variant runs and decodes like its baseline; a fork's kernels ran."""
