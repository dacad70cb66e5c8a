"""`bookbridge evaluate`: offline evaluation of the recommenders on goodbooks-format CSVs."""
