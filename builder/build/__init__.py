"""Building a variant: the pipeline from plan to publish, CMake configure and Ninja, `variant patch check`."""
