"""GGUF models: tiny ones generated, the forks' recipes and writers; the installed variants that run them."""
