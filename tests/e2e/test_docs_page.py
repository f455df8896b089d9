"""The Swagger UI page as a person sees it: rendered by headless Chromium from the local gateway, offline.

A browser cannot sign its requests: the stack here serves the docs routes anonymously, as PublicDocs=true deploys them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from local.stack import LocalStack
from tests.leaks import observe
from tests.unit.test_openapi_spec import OPERATIONS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The machine's closed network refuses Chromium's own background connections: keep it from trying.
QUIET = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(sim_lifetime_s=600, parameters={"PublicDocs": "true"}) as running:
        running.gateway.observers.append(observe)
        yield running


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (Debian package chromium)")
        pytest.skip("chromium is not installed (`make test` installs it)")
    return CHROMIUM


def rendered_paths(dom: str) -> set[tuple[str, str]]:
    """(method, path) of every operation Swagger UI drew: its summary blocks, not the spec in the script."""
    blocks = re.findall(r'opblock-summary-method">(\w+)<.*?data-path="([^"]+)"', dom, flags=re.S)
    return {(method, path) for method, path in blocks}


def test_the_docs_page_shows_both_providers_routes(stack, chromium, tmp_path):
    dump = subprocess.run(
        [chromium, *QUIET, f"--user-data-dir={tmp_path}", "--virtual-time-budget=20000", "--dump-dom",
         f"{stack.gateway.url}/v1/docs"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip

    assert rendered_paths(dump.stdout) == OPERATIONS
    # The spec's security schemes: an Authorize button, and a lock on every operation.
    assert '<button class="btn authorize' in dump.stdout
    assert dump.stdout.count('<button class="authorization__btn') == 6
