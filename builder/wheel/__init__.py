"""Variants as llama-cpp-python wheels: the pinned sdist with the variant's tree, by scikit-build-core."""
