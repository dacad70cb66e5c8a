"""Who is calling: API keys, JWTs, the viewer and its scopes (no GraphQL in here)."""
