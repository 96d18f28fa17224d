"""Fusing deferred inserts for PostgreSQL: pure functions (the database side: test_deferred)."""

from __future__ import annotations

from triotok.store._deferred import Deferred
from triotok.store._fuse import MAX_PARAMS, fuse_all, fuse_runs

_A = Deferred("INSERT INTO a (x, y) VALUES ($1, $2)", (1, 2))
_B = Deferred("INSERT INTO b (z) VALUES ($1)", [(3,), (4,)], many=True)
_C = Deferred("INSERT INTO c (t) VALUES (coalesce($1::timestamptz, now()))", (None,))
_UPDATE = Deferred("UPDATE a SET y = $1 WHERE x = $2", (5, 1), expect=1)


def test_a_run_of_inserts_becomes_one_statement_with_renumbered_parameters() -> None:
    [fused] = fuse_runs([_A, _B, _C])
    assert fused.sql == (
        "WITH s1 AS (INSERT INTO a (x, y) VALUES ($1, $2)),"
        " s2 AS (INSERT INTO b (z) VALUES ($3), ($4))"
        " INSERT INTO c (t) VALUES (coalesce($5::timestamptz, now()))"
    )
    assert fused.params == (1, 2, 3, 4, None)
    assert not fused.many
    assert fused.expect is None


def test_anything_else_stays_alone_and_in_order() -> None:
    fused = fuse_runs([_A, _UPDATE, _A, _C])
    assert [d.sql.split(" ")[0] for d in fused] == ["INSERT", "UPDATE", "WITH"]
    assert fused[0] is _A  # a run of one is sent as written
    assert fused[1] is _UPDATE
    assert fused[2].params == (1, 2, None)


def test_only_plain_inserts_are_fused() -> None:
    refused = [
        Deferred("INSERT INTO a (x) VALUES ($1) ON CONFLICT DO NOTHING", (1,)),
        Deferred("INSERT INTO a (x) VALUES ($1) RETURNING x", (1,)),
        Deferred("INSERT INTO a (x) VALUES ((SELECT max(x) FROM a))", ()),
        Deferred("INSERT INTO a (x) VALUES ('$1')", ()),
        Deferred("INSERT INTO a (x) VALUES ($1) -- comment", (1,)),
        Deferred("INSERT INTO a (x) VALUES (DEFAULT)", ()),
        Deferred("INSERT INTO a VALUES ($1)", (1,)),  # no column list
        Deferred("INSERT INTO a (x) VALUES ($1)", (1,), expect=1),
    ]
    for statement in refused:
        assert fuse_runs([_A, statement, _A]) == [_A, statement, _A], statement.sql
        assert fuse_all([_A, statement], notify=None) is None, statement.sql


def test_all_of_a_unit_with_its_notify_last() -> None:
    single = fuse_all([_A, _C], notify="triotok_outbox")
    assert single is not None
    assert single.sql == (
        "WITH s1 AS (INSERT INTO a (x, y) VALUES ($1, $2)),"
        " s2 AS (INSERT INTO c (t) VALUES (coalesce($3::timestamptz, now())))"
        " SELECT pg_notify('triotok_outbox', '')"
    )
    assert single.params == (1, 2, None)
    alone = fuse_all([_B], notify=None)
    assert alone is not None
    assert alone.sql == "INSERT INTO b (z) VALUES ($1), ($2)"
    assert fuse_all([], notify=None) is None


def test_parameters_stay_below_the_limit() -> None:
    big = Deferred("INSERT INTO b (z) VALUES ($1)", [(i,) for i in range(MAX_PARAMS + 1)], True)
    assert fuse_all([_A, big], notify=None) is None
    assert fuse_runs([_A, big, _A]) == [_A, big, _A]
    half = Deferred("INSERT INTO b (z) VALUES ($1)", [(i,) for i in range(MAX_PARAMS // 2)], True)
    runs = fuse_runs([half, half, half])
    assert len(runs) == 2
    assert sum(len(r.params) for r in runs) == 3 * (MAX_PARAMS // 2)
