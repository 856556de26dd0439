"""What is made of stored runs: their export and import between stores, compare, the report, questions."""
