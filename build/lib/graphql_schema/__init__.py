"""GraphQL types, inputs and the schema assembled from them (see schema.py)."""
