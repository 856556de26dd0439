"""Model writers for the forks' own formats, run as `python -m builder.models.writers.NAME` in a child.

Each imports the gguf-py of the fork it writes for (the PyPI package gives the
forks' type ids other meanings: 39 is MXFP4 there, T-MAC's I4 and BitNet's TL2
in the forks), so it must run in a process of its own, never imported here.
"""
