"""The PostGraphile peer answers the same logical pages as bookbridge (live when installed)."""

from __future__ import annotations

import base64
import shutil

import httpx
import orjson
import pytest

from app.runtime.services import Services
from bench import peer, scenarios, seed
from tests import factories


def test_a_page_is_the_same_whatever_the_field_names() -> None:
    mine = {
        "data": {
            "books": {
                "edges": [
                    {
                        "cursor": "x",
                        "node": {
                            "id": "b1",
                            "title": "T",
                            "topics": [{"weight": 1.0, "topic": {"id": "t1", "label": "L"}}],
                        },
                    }
                ]
            }
        }
    }
    theirs = {
        "data": {
            "books": {
                "edges": [
                    {
                        "cursor": "y",
                        "node": {
                            "id": "b1",
                            "title": "T",
                            "topicBookMappingsList": [
                                {"weight": 1, "topic": {"id": "t1", "label": "L"}}
                            ],
                        },
                    }
                ]
            }
        }
    }
    assert peer.differs(orjson.dumps(mine), orjson.dumps(theirs)) is None
    theirs["data"]["books"]["edges"][0]["node"]["id"] = "b2"
    assert "different rows" in (peer.differs(orjson.dumps(mine), orjson.dumps(theirs)) or "")
    errors = orjson.dumps({"errors": [{"message": "Cannot query field"}]})
    assert "PostGraphile answered" in (peer.differs(orjson.dumps(mine), errors) or "")


def test_the_peer_cursor_points_after_a_primary_key() -> None:
    assert peer.cursor(None) is None
    decoded = orjson.loads(base64.b64decode(peer.cursor("b0049") or ""))
    assert decoded == ["primary_key_asc", ["b0049"]]


@pytest.mark.skipif(
    not peer.installed() or shutil.which("node") is None,
    reason="PostGraphile not installed (python -m bench installs it)",
)
async def test_postgraphile_answers_the_pages_bookbridge_answers(
    services: Services, http: httpx.AsyncClient, database_url: str
) -> None:
    await factories.catalog(services, books=60, topics=12)
    url = seed.plain_url(database_url)
    todo = await scenarios.read_scenarios(url)
    assert {s.name for s in todo} == {"catalog_page", "deep", "book_by_id"}
    headers = {"content-type": "application/json"}
    with peer.postgraphile(url, 2) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as client:
            for scenario in todo:
                assert scenario.peer_bodies is not None
                for mine, theirs in zip(scenario.bodies, scenario.peer_bodies, strict=True):
                    a = await http.post("/graphql", content=mine, headers=headers)
                    b = await client.post("/graphql", content=theirs)
                    assert b.status_code == 200
                    assert peer.differs(a.content, b.content) is None, scenario.name


def test_without_node_the_peer_is_skipped_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "Node.js and npm not found" in (peer.install() or "")
