"""The per-node answer cache: reused until its tenant changes or its time is up, and never stale."""

from __future__ import annotations

from triotok.modules.search._pagecache import PageCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_until_its_tenant_changes_or_it_expires() -> None:
    clock = Clock()
    pages = PageCache(ttl=0.5, clock=clock)
    pages.put("list", "acme", b"limit=2", b"A", pages.generation("acme"))
    pages.put("list", "globex", b"limit=2", b"G", pages.generation("globex"))
    assert pages.get("list", "acme", b"limit=2") == b"A"
    assert pages.get("list", "acme", b"limit=3") is None
    pages.invalidate("acme")
    assert pages.get("list", "acme", b"limit=2") is None
    assert pages.get("list", "globex", b"limit=2") == b"G"  # other tenants keep theirs
    clock.now = 0.5
    assert pages.get("list", "globex", b"limit=2") is None
    assert pages.statistics().hits == 2


def test_a_read_that_started_before_a_change_is_never_kept() -> None:
    pages = PageCache(ttl=10, clock=Clock())
    before = pages.generation("acme")
    pages.invalidate("acme")  # an event applied while the answer was being read
    pages.put("list", "acme", b"", b"old", before)
    assert pages.get("list", "acme", b"") is None
    before = pages.generation("acme")
    pages.invalidate_all()  # a rebuild batch
    pages.put("list", "acme", b"", b"old", before)
    assert pages.get("list", "acme", b"") is None


def test_it_is_bounded_and_can_be_off() -> None:
    pages = PageCache(ttl=10, maxsize=2, clock=Clock())
    for n in range(3):
        pages.put("list", "acme", str(n).encode(), b"x", pages.generation("acme"))
    assert pages.statistics().size == 2
    assert pages.get("list", "acme", b"0") is None
    off = PageCache(ttl=0)
    off.put("list", "acme", b"", b"x", off.generation("acme"))
    assert off.get("list", "acme", b"") is None
