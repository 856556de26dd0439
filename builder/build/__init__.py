"""Building a variant: the plan and its hash, configure, Ninja, verify, publish with a manifest."""
