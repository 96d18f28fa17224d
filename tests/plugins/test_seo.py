"""The seo plugin: its analysis (pure, property-tested) and its life on a real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from tests.http.conftest import ServerFactory
from tests.plugins.helpers import collect, enable
from triotok.plugins.seo import analyse, slugify
from triotok.plugins.seo._analysis import describe, plain_text, reading_minutes

SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"


def test_slugs_fold_accents_and_drop_stop_words() -> None:
    assert slugify("The Café: déjà vu!") == "the-cafe-deja-vu"
    assert slugify("The Café: déjà vu!", drop_stop_words=True) == "cafe-deja-vu"
    assert slugify("of the and") == "of-the-and"
    assert slugify("of the and", drop_stop_words=True) == "of-the-and"  # nothing else left
    assert slugify("日本語") == ""


@given(st.text(max_size=300))
def test_a_slug_is_always_a_valid_slug_of_at_most_60_characters(title: str) -> None:
    for slug in (slugify(title), slugify(title, drop_stop_words=True)):
        assert len(slug) <= 60
        assert slug == "" or SLUG.fullmatch(slug)


@given(st.text(max_size=2000))
def test_a_description_is_short_and_made_of_the_text(text: str) -> None:
    found = describe(text)
    assert len(found) <= 160
    if found:
        assert found.rstrip("…").split()[0] in text


def test_descriptions_keep_whole_sentences() -> None:
    text = "First sentence here. " + "Second one is much longer than the first. " * 6
    assert describe(text) == (
        "First sentence here. Second one is much longer than the first. "
        "Second one is much longer than the first. Second one is much longer than the first."
    )
    long = "word " * 100
    assert describe(long).endswith("…")
    assert len(describe(long)) <= 160


def test_markup_is_stripped_and_reading_time_rounds_up() -> None:
    assert plain_text("# Title\n\nSome **bold** [link](http://x) text") == (
        "Title Some bold link text"
    )
    assert plain_text("<p>Hi &amp; <b>bye</b></p>", "html") == "Hi & bye"
    assert reading_minutes(0) == 1
    assert reading_minutes(200) == 1
    assert reading_minutes(201) == 2
    found = analyse("en", "Hello World", "hello-world", "", "word " * 450, "markdown")
    assert found.slugs == ()  # the current slug is never suggested
    assert (found.words, found.reading_minutes) == (450, 3)


NODE = {
    "kind": "post",
    "translations": {
        "en": {"title": "The Best Café in Town", "slug": "cafe", "body": "Coffee. " * 300},
        "fr": {"title": "Le meilleur café", "slug": "cafe", "excerpt": "Un café."},
    },
}


async def test_content_events_give_a_report_per_node_and_tenant(make_server: ServerFactory) -> None:
    with trio.fail_after(60):
        async with make_server() as server:
            await enable(server, "seo", "acme")
            key = server.auth(await server.key("acme", "editor"))
            other = server.auth(await server.key("beta", "admin"))
            analysed = await collect(server, "seo.analyzed")
            created = await server.client.post("/api/content/nodes", json=NODE, headers=key)
            assert created.status_code == 201
            node_id = created.json()["id"]
            [event] = await analysed.wait(1)
            assert event.tenant_id == "acme"
            assert str(event.payload.node_id) == node_id
            report = await server.client.get(f"/api/plugins/seo/nodes/{node_id}", headers=key)
            assert report.status_code == 200, report.text
            body = report.json()
            assert body["version"] == 1
            assert body["locales"]["en"]["slugs"] == ["the-best-cafe-in-town", "best-cafe-town"]
            assert body["locales"]["en"]["reading_minutes"] == 2
            assert body["locales"]["fr"]["description"] == "Un café."
            # Another tenant has not switched seo on, and never sees acme's report.
            foreign = await server.client.get(f"/api/plugins/seo/nodes/{node_id}", headers=other)
            assert foreign.status_code == 409
            # A change is analysed again; a deletion drops the report.
            etag = created.headers["ETag"]
            changed = {"translations": {"en": {"title": "Quiet Café", "slug": "quiet-cafe"}}}
            updated = await server.client.patch(
                f"/api/content/nodes/{node_id}", json=changed, headers={**key, "If-Match": etag}
            )
            assert updated.status_code == 200, updated.text
            await analysed.wait(2)
            body = (
                await server.client.get(f"/api/plugins/seo/nodes/{node_id}", headers=key)
            ).json()
            assert body["version"] == 2
            assert body["locales"]["en"]["slugs"] == []  # "quiet-cafe" is already its slug
            assert list(body["locales"]) == ["en"]
            manager = server.services.plugins
            calls = manager.status("seo").statistics["calls"]["ok"]
            deleted = await server.client.delete(
                f"/api/content/nodes/{node_id}",
                headers={**key, "If-Match": updated.headers["ETag"]},
            )
            assert deleted.status_code == 204
            # The deletion event is the only call into seo meanwhile.
            await manager.wait_for("seo", lambda s: s.statistics["calls"]["ok"] > calls)
            gone = await server.client.get(f"/api/plugins/seo/nodes/{node_id}", headers=key)
            assert gone.status_code == 404
            unknown = await server.client.get("/api/plugins/seo/nodes/not-a-uuid", headers=key)
            assert unknown.status_code == 404
