"""A patch series' pull request: PR.md beside the export, numbers from stored runs, tests from smoke."""
