"""The compiled read path: a whole GraphQL read operation answered by one SQL statement.

`mapping` declares how fields map to tables, columns and relations (the tables themselves live
beside the Strawberry types, as `SQL` in `graphql_schema/types/*`); `plan` compiles an operation
into one statement whose JSON text PostgreSQL builds; `extension` plugs it into Strawberry as
the last schema extension, after every limit, and falls back to normal execution for anything
it cannot answer identically. The SQL text is built here, not in `app/db`: it is GraphQL -> SQL
compilation, and only identifiers from the mapping are ever written into it (values are bind
parameters).
"""
