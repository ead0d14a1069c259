"""What reaches the model: chosen features only, credentials withheld, personal data redacted."""

from __future__ import annotations

import json
from typing import Any

import kairos_ai
import pytest
from kairos_ai.config import PrivacyConfig
from kairos_ai.privacy import Redactor, luhn_valid

from kairos_core.testing import Backend

CARD = "4111 1111 1111 1111"
BODY = json.dumps(
    {
        "customer": "ann.lee@example.com",
        "card": CARD,
        "ssn": "SSN-123-45-6789",
        "order": 42,
        "note": "call me",
    }
).encode()


async def test_prompt_carries_only_chosen_features_redacted(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    config = ai_config(
        fake_model,
        named_backends,
        request={
            "headers": ["x-tenant", "content-type", "x-session-id", "x-note"],
            "body_bytes": 4096,
            "consumer": True,
        },
        privacy={"patterns": [r"SSN-[0-9-]+"], "replacement": "***"},
    )
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    headers = {
        "Authorization": "Bearer top-secret-token",
        "Cookie": "sid=cookie-secret",
        "X-Session-Id": "session-secret",
        "X-Tenant": "acme",
        "X-Note": "from bob@example.org",
        "X-Other": "not listed",
        "Content-Type": "application/json",
    }
    url = gw.url + "/orders/ann%40example.com?page=2&access_token=query-secret&q=4111111111111111"
    async with http.post(url, data=BODY, headers=headers) as response:
        assert response.status == 200
    raw = fake_model.calls[0]["raw"].decode()
    for secret in (
        "top-secret-token",
        "cookie-secret",
        "session-secret",
        "query-secret",
        "ann.lee@example.com",
        "bob@example.org",
        "4111",
        "123-45-6789",
        "not listed",
    ):
        assert secret not in raw
    document = fake_model.user_messages()[0]
    assert document["method"] == "POST"
    assert document["path"] == "/orders/***"
    assert document["query"] == [["page", "2"], ["access_token", "***"], ["q", "***"]]
    assert document["headers"] == {
        "x-tenant": "acme",
        "content-type": "application/json",
        "x-note": "from ***",
    }
    assert "consumer" not in document  # no authenticator on this route
    assert json.loads(document["body"]) == {
        "customer": "***",
        "card": "***",
        "ssn": "***",
        "order": 42,
        "note": "call me",
    }
    echoed = named_backends[await _served_by(response)].records[-1]
    assert echoed.body == BODY
    assert echoed.headers["Authorization"] == "Bearer top-secret-token"


async def _served_by(response: Any) -> str:
    return str(response.headers["X-Backend"])


async def test_body_excerpt_is_cut_without_leaking_a_fragment(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    config = ai_config(fake_model, named_backends, request={"body_bytes": 40})
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    body = b"please route this text: 4111 1111 1111 1111 and more words follow here"
    async with http.post(gw.url + "/t", data=body, headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 200
    document = fake_model.user_messages()[0]
    assert document["body"] == "please route this text: 4111 1111"[:24]
    assert document["body_truncated"] is True
    assert named_backends[r.headers["X-Backend"]].records[-1].body == body


async def test_binary_bodies_are_described_not_read(
    kairos_gateway: Any,
    http: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
) -> None:
    config = ai_config(fake_model, named_backends, request={"body_bytes": 64})
    gw = await kairos_gateway(config, plugins=[kairos_ai])
    body = bytes(range(256)) * 8
    headers = {"Content-Type": "application/octet-stream"}
    async with http.put(gw.url + "/blob", data=body, headers=headers) as r:
        assert r.status == 200
    document = fake_model.user_messages()[0]
    assert document["body"] == "<2048 bytes of application/octet-stream, not shown>"
    assert named_backends[r.headers["X-Backend"]].records[-1].body == body


def test_redactor_units() -> None:
    redactor = Redactor(PrivacyConfig(patterns=[r"\bACME-\d{4}\b"]))
    assert redactor.text("mail a.b+c@mail.example.co.uk now") == "mail [redacted] now"
    assert redactor.text("card 5500-0000-0000-0004.") == "card [redacted]."
    assert redactor.text("order 1234567890123") == "order 1234567890123"  # fails Luhn
    assert redactor.text("id ACME-1234") == "id [redacted]"
    assert redactor.query_value("api_key", "x") == "[redacted]"
    assert redactor.query_value("page", "3") == "3"
    assert not redactor.header_allowed("Authorization")
    assert not redactor.header_allowed("X-Auth-Token")
    assert redactor.header_allowed("X-Tenant")
    assert redactor.excerpt('{"a": "long-word', truncated=True) == '{"a": "'
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    plain = Redactor(PrivacyConfig(redact_emails=False, redact_card_numbers=False, deny_headers=[]))
    assert plain.text("a@b.co 4111111111111111") == "a@b.co 4111111111111111"
    assert plain.header_allowed("X-Auth-Token")
    assert not plain.header_allowed("Cookie")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"request": {"headers": ["Authorization"]}}, "'Authorization' is never sent"),
        ({"privacy": {"patterns": ["(unclosed"]}}, "invalid regular expression"),
        ({"endpoint": {"headers": {"X-Api-Key": "k"}}}, "looks like a credential"),
        ({"cache": {"key": ["body"]}}, "request.body_bytes is 0"),
        ({"cache": {"key": ["cookie"]}}, "unknown cache key feature 'cookie'"),
        ({"backends": {"gpu": {"description": "x"}}}, "'gpu' is not a backend of this pool"),
        ({"endpoint": {"api_key": "sk-literal"}}, "endpoint.api_key: unknown field"),
    ],
)
async def test_bad_settings_are_config_errors(
    kairos_gateway: Any,
    fake_model: Any,
    named_backends: dict[str, Backend],
    ai_config: Any,
    settings: dict[str, Any],
    message: str,
) -> None:
    from kairos_core.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        await kairos_gateway(ai_config(fake_model, named_backends, **settings), plugins=[kairos_ai])
    rendered = caught.value.render()
    assert "upstreams.models.balancer" in rendered
    assert message in rendered
