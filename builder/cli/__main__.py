"""`python -m builder.cli`: the same as the `variant` command."""

from . import main

main()
