"""Prints the schema in SDL: `python -m bookbridge.graphql_schema.export > schema.graphql`."""

from bookbridge.graphql_schema.schema import build_schema

if __name__ == "__main__":
    print(build_schema().as_str())
