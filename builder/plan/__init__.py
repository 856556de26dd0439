"""What a variant is built from, resolved: the plan and its hash, its trees, dependencies, compiler floor."""
