"""The CI stage: the build matrix, the generated GitHub Actions workflows, local matrix runs."""
