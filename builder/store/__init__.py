"""The results database (results.sqlite): its schema, runs and measurements recorded, checked when opened."""
