"""Root-field resolvers: arguments in, one domain or loader call, GraphQL type out."""
