"""Prints the schema in SDL: `python -m graphql_schema.export > schema.graphql`."""

from graphql_schema.schema import build_schema

if __name__ == "__main__":
    print(build_schema().as_str())
