"""What a build checks in its artifacts: ELF facts, each spec axis, compile commands, kernels, provenance."""
