"""Following upstream: a variant across upstream versions (bisect, history, pin bumps)."""
