"""A build published to dist/NAME: the atomic swap, its manifest read back, what it needs at run time."""
