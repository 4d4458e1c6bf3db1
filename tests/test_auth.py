"""CAPTCHAOCR_API_KEYS: every route but the health check needs a configured key."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.support import Stack
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("keyed"), workers=1, api_keys="first-key,second-key")
    yield stack
    stack.close()


def test_health_needs_no_key(keyed: Stack) -> None:
    assert keyed.http.get("/").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "first-ke"}, {"Authorization": "first-key"}],
    ids=["none", "wrong-bearer", "prefix", "no-bearer-scheme"],
)
def test_missing_or_wrong_key_is_401_everywhere(keyed: Stack, headers: dict[str, str]) -> None:
    assert keyed.http.post("/ocr", json={"image_base64": IMAGE}, headers=headers).status_code == 401
    assert keyed.http.post("/ocr/batch", json={"images": [IMAGE]}, headers=headers).status_code == 401
    assert keyed.http.get("/jobs/some-id", headers=headers).status_code == 401
    response = keyed.http.get("/metrics", headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_bearer_or_x_api_key_with_any_configured_key_is_served(keyed: Stack) -> None:
    for headers in ({"Authorization": "Bearer first-key"}, {"X-API-Key": "second-key"}):
        response = keyed.http.post("/ocr", json={"image_base64": IMAGE}, headers=headers)
        assert response.status_code == 200 and response.json()["text"] == LABEL
        assert "captchaocr_requests_total" in keyed.http.get("/metrics", headers=headers).text


def test_refusals_are_counted_as_401(keyed: Stack) -> None:
    def refused() -> float:
        text = keyed.http.get("/metrics", headers={"X-API-Key": "first-key"}).text
        match = re.search(r'^captchaocr_requests_total\{outcome="401",route="/ocr"\} (\S+)$', text, re.M)
        return float(match.group(1)) if match else 0.0

    before = refused()
    assert keyed.http.post("/ocr", json={"image_base64": IMAGE}).status_code == 401
    assert refused() == before + 1
