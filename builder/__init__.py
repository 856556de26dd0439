"""llama-variants: named, verified llama.cpp build variants and kernel patch series."""

from __future__ import annotations

__version__ = "0.1.0"

# Bump when the way a spec turns into a build changes (default CMake options,
# flag handling, install layout): every variant's hash changes with it, so
# `variant list` shows all of them stale instead of silently mixing recipes.
RECIPE_VERSION = 2
