"""Patch series: files and pins, applying them with git am, the ids that verify them."""
