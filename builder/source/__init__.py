"""Sources: sources.toml, bare mirrors fed from git or pinned offline archives, worktrees."""
