"""Run one operation through both paths (compiled reads on and off) and compare them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.core.scopes import Scope
from app.core.viewer import Viewer
from app.runtime.services import Services
from graphql_schema.schema import BookbridgeSchema, build_schema
from graphql_schema.types.context import Context

# an admin: no rate limit charges (the cost of thousands of operations would exhaust any budget)
ADMIN = Viewer(role="admin", user_id="differential", scopes=frozenset({Scope.ADMIN}))


@dataclass
class Paths:
    services: Services
    compiled: BookbridgeSchema
    normal: BookbridgeSchema

    @classmethod
    def of(cls, services: Services) -> Paths:
        off = services.settings.model_copy(update={"compiled_reads": False})
        return cls(services, build_schema(services.settings), build_schema(off))

    async def run(
        self, schema: BookbridgeSchema, query: str, variables: Any, viewer: Viewer = ADMIN
    ) -> tuple[Any, ...]:
        result = await schema.execute(
            query, variables, context_value=Context.create(self.services, viewer=viewer)
        )
        # lists computed on a miss are stored after the answer (app/reco/stored.WriteBack):
        # the next request finds them stored, as the request after it would on a server
        await self.services.stored_writes.drain()
        errors = [
            (e.message, e.path, (e.extensions or {}).get("code")) for e in result.errors or ()
        ]
        compiled = isinstance(result.data, dict) and any(
            isinstance(v, orjson.Fragment) for v in result.data.values()
        )
        return orjson.dumps(result.data), errors, compiled

    async def compare(self, query: str, variables: Any = None, viewer: Viewer = ADMIN) -> bool:
        """Assert both paths answer the same bytes and errors; True when it was compiled."""
        data, errors, compiled = await self.run(self.compiled, query, variables, viewer)
        want_data, want_errors, _ = await self.run(self.normal, query, variables, viewer)
        assert data == want_data, (query, variables)
        if not compiled and data == b"null" and len(errors) == len(want_errors) == 1:
            # Both answers come from normal execution, which runs async root fields
            # concurrently: when two of them fail, which error nulls `data` first is a race.
            assert errors[0][2] == want_errors[0][2], (query, variables, errors, want_errors)
        else:
            assert errors == want_errors, (query, variables, errors, want_errors)
        return compiled
