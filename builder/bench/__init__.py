"""Running variants: models, smoke, bench suites, results, comparisons, reports, profiles."""
