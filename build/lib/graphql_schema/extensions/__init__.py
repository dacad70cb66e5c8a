"""Cross-cutting GraphQL concerns, one module each: limits, cost, masking, documents, tracing."""
