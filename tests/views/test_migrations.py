"""Migrations on both backends: idempotent, truthful status, views published by file."""

from __future__ import annotations

import pyarrow as pa
from flightdeck.views import describe, migrations, view_names

CORE_VIEWS = ["va_event", "va_pageview_aggregate", "va_pageview_event", "va_pageview_hourly"]


def _states(store, found) -> dict[str, str]:
    return {st.migration.name: st.state for st in migrations.status(store, found)}


def test_fresh_store_has_everything_pending(raw_store):
    found = migrations.load_migrations(raw_store.backend)
    states = _states(raw_store, found)
    assert set(states.values()) == {"pending"}
    assert {"001_pageview_event", "002_pageview_aggregates", *CORE_VIEWS} <= set(states)


def test_apply_is_idempotent_and_status_is_truthful(raw_store):
    found = migrations.load_migrations(raw_store.backend)
    first = migrations.apply(raw_store, found)
    assert [m.name for m in first] == [m.name for m in found]
    assert set(_states(raw_store, found).values()) == {"applied"}
    assert migrations.apply(raw_store, found) == []
    assert view_names(raw_store) == CORE_VIEWS


def test_pre_then_post_phases(raw_store):
    found = migrations.load_migrations(raw_store.backend)
    applied = migrations.apply(raw_store, found, "pre")
    assert {m.phase for m in applied} == {"pre"}
    assert view_names(raw_store) == []
    states = _states(raw_store, found)
    assert all(states[v] == "pending" for v in CORE_VIEWS)
    migrations.apply(raw_store, found, "post")
    assert view_names(raw_store) == CORE_VIEWS


def test_dry_run_plan_applies_nothing(raw_store):
    found = migrations.load_migrations(raw_store.backend)
    todo = migrations.plan(raw_store, found)
    assert [m.name for m in todo] == [m.name for m in found]
    assert (
        "CREATE TABLE IF NOT EXISTS tb_pageview_event" in todo[0].statements(raw_store.backend)[0]
    )
    assert view_names(raw_store) == []
    assert set(_states(raw_store, found).values()) == {"pending"}


def test_a_dropped_view_shows_as_pending_and_comes_back(store):
    found = migrations.load_migrations(store.backend)
    with store.write() as conn:
        with conn.cursor() as cursor:
            cursor.execute('DROP VIEW "va_pageview_hourly"')
        conn.commit()
    assert _states(store, found)["va_pageview_hourly"] == "pending"
    assert [m.name for m in migrations.apply(store, found)] == ["va_pageview_hourly"]
    assert "va_pageview_hourly" in view_names(store)


def test_new_view_file_appears_in_catalog_without_code(store, tmp_path):
    extra = tmp_path / "my_views"
    extra.mkdir()
    (extra / "va_top_pages.sql").write_text(
        "-- pages by total views\n"
        "SELECT page_url, sum(view_count) AS views FROM va_pageview_aggregate GROUP BY page_url\n"
    )
    found = migrations.load_migrations(store.backend, [extra])
    assert [m.name for m in migrations.apply(store, found)] == ["va_top_pages"]
    [info] = describe(store, "va_top_pages")
    assert info.schema.names == ["page_url", "views"]
    # Changing the file re-creates the view; status says so first.
    (extra / "va_top_pages.sql").write_text(
        "SELECT page_url, count(*) AS days FROM va_pageview_aggregate GROUP BY page_url"
    )
    found = migrations.load_migrations(store.backend, [extra])
    assert _states(store, found)["va_top_pages"] == "changed"
    migrations.apply(store, found)
    assert describe(store, "va_top_pages")[0].schema.field("days").type == pa.int64()


def test_changed_pre_migration_is_a_conflict(store, tmp_path, monkeypatch):
    import pytest

    found = migrations.load_migrations(store.backend)
    first = found[0]
    edited = migrations.Migration(first.phase, first.name, first.source, first.body + "\n-- x\n")
    with pytest.raises(migrations.MigrationConflict, match=first.name):
        migrations.apply(store, [edited, *found[1:]])


def test_backend_specific_file_wins(tmp_path):
    duck = migrations.load_migrations("duckdb")
    pg = migrations.load_migrations("postgresql")
    duck_idx = next(m for m in duck if m.name == "003_event_indexes")
    pg_idx = next(m for m in pg if m.name == "003_event_indexes")
    assert duck_idx.statements("duckdb") == []
    assert any("CREATE INDEX" in s for s in pg_idx.statements("postgresql"))
