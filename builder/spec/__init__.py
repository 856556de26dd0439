"""Specs: variants and their mixins, toolchains, flags and instruments, validated and resolved."""
