"""Starting the embedded stack twice in a row reuses the data of the first run, PostgreSQL rows
and Temporal workflow history alike, and leaves nothing running in between."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from stack_testing import ADDRESS_VARIABLES, free_port, processes_of
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from foundation.settings import Settings
from stack.embedded import EmbeddedStack
from stack.search_attributes import ALL_KEYS


@pytest.fixture
def settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ADDRESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BILLING_DATA_DIR", str(data_dir))
    monkeypatch.setenv("BILLING_TEMPORAL_PORT", str(free_port()))
    monkeypatch.setenv("BILLING_TEMPORAL_UI_PORT", str(free_port()))
    return Settings()


async def test_second_run_reuses_postgres_rows_and_temporal_history(settings: Settings, data_dir: Path) -> None:
    marker = f"run-one-{uuid.uuid4()}"
    workflow_id = f"stack-reuse-{uuid.uuid4()}"

    # First run: the synchronous form.
    with EmbeddedStack(settings) as first:
        assert first.postgres_embedded and first.temporal_embedded
        assert first.ui_url == f"http://127.0.0.1:{settings.temporal_ui_port}"
        with psycopg.connect(first.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS stack_test_marker (value text PRIMARY KEY)")
            conn.execute("INSERT INTO stack_test_marker VALUES (%s)", (marker,))
            # The migrations ran: alembic knows its revision.
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert first.temporal_address is not None
        client = await Client.connect(first.temporal_address, namespace=first.temporal_namespace)
        # Nobody polls this queue: the workflow simply stays open, recorded in temporal.sqlite.
        await client.start_workflow("NoSuchWorkflow", id=workflow_id, task_queue="stack-test-nobody")
        registered = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=first.temporal_namespace))
        for key in ALL_KEYS:
            assert key.name in registered.custom_attributes, key.name

    assert processes_of(data_dir) == [], "the first run left a server running"
    assert (data_dir / "temporal.sqlite").exists()

    # Second run: the async form, same folder.
    async with EmbeddedStack(settings) as second:
        assert second.database_url == first.database_url
        with psycopg.connect(second.database_url) as conn:
            rows = conn.execute("SELECT value FROM stack_test_marker").fetchall()
        assert rows == [(marker,)]
        assert second.temporal_address is not None
        client = await Client.connect(second.temporal_address, namespace=second.temporal_namespace)
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.workflow_type == "NoSuchWorkflow"

    assert processes_of(data_dir) == []


def test_nested_stack_on_the_same_folder_joins_and_leaves_servers_to_the_owner(settings: Settings, data_dir: Path) -> None:
    with EmbeddedStack(settings) as outer:
        running = processes_of(data_dir)
        assert len(running) == 2  # postmaster and temporal server
        with EmbeddedStack(settings) as inner:
            assert inner.database_url == outer.database_url
            assert inner.temporal_address == outer.temporal_address
        # The inner one did not own them, so they still run.
        assert sorted(p.pid for p in processes_of(data_dir)) == sorted(p.pid for p in running)
        with psycopg.connect(outer.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert processes_of(data_dir) == []
