"""`billing api`'s `/docs` and `/redoc` load every file from the API itself: they work offline."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from foundation.settings import SANDBOX_OID, SANDBOX_TOKEN, Settings
from gravity.directory import GatewayDirectory
from gravity.sandbox.server import SandboxServer, ThreadedUvicorn
from tests.conftest import TASK_QUEUE


@pytest.fixture
def api_url(engine: Engine, temporal_env: WorkflowEnvironment, sandbox_server: SandboxServer) -> Iterator[str]:
    settings = Settings.model_construct(api_token=SecretStr("docs-test-token"), events_url=None, events_secret=None)
    gateways = GatewayDirectory(sandbox_server.base_url, {SANDBOX_OID: SANDBOX_TOKEN}, timeout=5.0)
    server = ThreadedUvicorn(create_app(engine, temporal_env.client, settings, task_queue=TASK_QUEUE, gateways=gateways)).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_need_nothing_from_another_host(api_url: str, page: str) -> None:
    html = httpx.get(api_url + page, timeout=10)
    assert html.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""", html.text)
    urls = [a or b for a, b in assets]
    assert urls, html.text
    assert not [u for u in urls if u.startswith(("http://", "https://", "//"))], urls
    for url in urls:
        answer = httpx.get(api_url + url, timeout=10)
        assert answer.status_code == 200 and answer.content, url
    assert "fonts.googleapis" not in html.text
