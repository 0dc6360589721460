"""The Slack digest (Block Kit within its limits, cloud text escaped) and its delivery through a real HTTP
server on 127.0.0.1: an incoming-webhook route and a fake Web API ``/api/chat.postMessage`` answering like Slack.

Golden files: tests/reports/golden/slack-*.json (COSTAGENT_UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.channels import DeliveryError, SlackBot, SlackWebhook, deliver
from reports.digest import Digest, Unread
from reports.digest_slack import (
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    check_limits,
    render_slack,
    slack_code,
    slack_text,
)
from tests.reports.digest_sample import (
    HOSTILE_NAME,
    HOSTILE_TEAM,
    empty_digest,
    full_digest,
)

GOLDEN = Path(__file__).parent / "golden"
SECRET_PATH = "/services/T0SECRET1/B0SECRET2/xoxsecretwebhookpart42"
TOKEN = "xoxb-1234-5678-supersecrettoken"


def big_digest(n: int = 200) -> Digest:
    first = full_digest().findings[0]
    findings = tuple(replace(first, id=f"f{i:04d}", resource_id=f"i-{i:017x}", name=f"{HOSTILE_NAME} {i}",
                             monthly_savings_usd=Decimal(1000 + i)) for i in range(n))
    unread = tuple(Unread("aws", "metrics", f"reason {i} <!here>", "us-east-1", f"i-{i}") for i in range(40))
    return replace(full_digest(), findings=findings, unread=unread)


def all_text(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def mrkdwn_objects(message: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message["blocks"])
    return found


# --- rendering --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["full", "empty"])
def test_matches_golden(name: str) -> None:
    digest = {"full": full_digest, "empty": empty_digest}[name]()
    rendered = json.dumps(render_slack(digest), indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / f"slack-{name}.json"
    if os.environ.get("COSTAGENT_UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run with COSTAGENT_UPDATE_GOLDEN=1 to create it"
    assert rendered == path.read_text(encoding="utf-8")


def test_full_digest_has_every_part_and_keeps_the_limits() -> None:
    message = render_slack(full_digest())
    assert check_limits(message) == []
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header"
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[:3] == ["*Monthly savings*\n$16,768.27", "*Findings*\n4", "*New*\n2"]
    text = all_text(message)
    for part in ("*$10,162.40/month* · stop · *new*", "· rightsize · *changed*",
                 "*Applied since the last digest* (1)",
                 "*Due (acts after its grace period)* (1)", "*Could not read* (1)", "confidence 90% · risk low"):
        assert part in text
    assert message["text"].startswith("costagent digest for everyone: $16,768.27/month")


def test_two_hundred_findings_are_cut_to_top_n_with_and_more() -> None:
    message = render_slack(big_digest(200))
    assert check_limits(message) == []
    finding_sections = [b for b in message["blocks"] if "/month*" in b.get("text", {}).get("text", "")]
    assert len(finding_sections) == 10
    assert "…and 190 more findings in the full report" in all_text(message)
    assert "…and 30 more" in all_text(message)  # unread list: 10 of 40 shown


def test_top_n_never_breaks_the_block_limit() -> None:
    message = render_slack(big_digest(200), top_n=500)
    assert len(message["blocks"]) == MAX_BLOCKS
    assert check_limits(message) == []
    assert "more findings in the full report" in all_text(message)


def test_huge_cloud_values_are_clipped_within_a_section() -> None:
    first = full_digest().findings[0]
    huge = replace(first, name="&" * 5000, summary="<" * 5000, team="*" * 5000, region="r" * 5000)
    message = render_slack(replace(full_digest(), findings=(huge,)))
    assert check_limits(message) == []
    section = next(b for b in message["blocks"] if "/month*" in b.get("text", {}).get("text", ""))
    assert len(section["text"]["text"]) < MAX_SECTION_TEXT // 2
    assert "&amp;…`" in section["text"]["text"] and "&lt;…" in section["text"]["text"]  # no entity cut in two


def test_empty_digest_says_nothing_to_report() -> None:
    message = render_slack(empty_digest())
    assert check_limits(message) == []
    assert "Nothing to report" in all_text(message)


def test_demo_digest_is_marked() -> None:
    message = render_slack(replace(full_digest(), demo=True))
    assert message["blocks"][0]["text"]["text"].endswith("(DEMO)")
    assert message["text"].startswith("[DEMO] ")


# --- escaping ---------------------------------------------------------------------------------------------

def test_hostile_name_and_team_cannot_mention_link_or_format() -> None:
    message = render_slack(full_digest())
    text = all_text(message)
    for raw in ("<!channel>", "<@U123>", "<https://evil.example|click>", "<script>", "<b>", "& <"):
        assert raw not in text
    assert "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt;" in text
    assert "team ml &amp; &lt;b&gt;vision&lt;/b&gt;" in text


def test_hostile_text_in_audience_and_unread_is_escaped() -> None:
    digest = replace(full_digest(), audience=f"team:{HOSTILE_TEAM} <!here>")
    message = render_slack(digest)
    assert "<!here>" not in all_text(message)
    assert "&lt;!here&gt;" in message["text"]
    assert "`no-agent-&lt;l4&gt;`" in all_text(message)


def test_every_mrkdwn_text_is_verbatim() -> None:
    objects = mrkdwn_objects(render_slack(full_digest()))
    assert objects and all(o.get("verbatim") is True for o in objects)


@pytest.mark.parametrize(("raw", "expected"), [
    ("*bold* _it_ ~gone~", "\u2217bold\u2217 \u02cdit\u02cd \u223cgone\u223c"),
    ("snake_case_name a*b", "snake_case_name a*b"),  # between letters nothing can format
    ("`code` x", "\u02cbcode\u02cb x"),
    ("a & b <c> d", "a &amp; b &lt;c&gt; d"),
    ("line\r\nbreak\n> quote", "line break &gt; quote"),
    (None, "-"),
])
def test_slack_text(raw: str | None, expected: str) -> None:
    assert slack_text(raw) == expected


def test_slack_code_keeps_underscores_and_replaces_backticks() -> None:
    assert slack_code("my_box*1") == "`my_box*1`"
    assert slack_code("a`b<c>") == "`a\u02cbb&lt;c&gt;`"


@given(st.text())
def test_escaped_text_has_no_control_sequence(raw: str) -> None:
    for out in (slack_text(raw), slack_code(raw)[1:-1] if raw else "-"):
        assert "<" not in out and ">" not in out and "`" not in out and "\n" not in out
        assert out.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0


# --- check_limits -----------------------------------------------------------------------------------------

def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(("message", "problem"), [
    ({"text": "x", "blocks": [_section("a")] * 51}, "51 blocks (at most 50)"),
    ({"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
     "text of 151 characters (at most 150)"),
    ({"text": "x", "blocks": [_section("s" * 3001)]}, "text of 3,001 characters (at most 3,000)"),
    ({"text": "x", "blocks": [_section("")]}, "empty text"),
    ({"text": "x", "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
     "11 fields (at most 10)"),
    ({"text": "x", "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}]},
     "field 0: text of 2,001 characters (at most 2,000)"),
    ({"blocks": [_section("a")]}, "no fallback text"),
    ({"text": "t" * 4001, "blocks": []}, "fallback text of 4,001 characters"),
])
def test_check_limits_names_each_broken_limit(message: dict[str, Any], problem: str) -> None:
    problems = check_limits(message)
    assert len(problems) == 1 and problem in problems[0]


# --- a Slack-like server on 127.0.0.1 ---------------------------------------------------------------------

@dataclass
class FakeSlack:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: scripted answers (status, body, headers) per path, used before the default success
    script: dict[str, deque[tuple[int, str, dict[str, str]]]] = field(default_factory=dict)

    def then(self, path: str, status: int, body: str, **headers: str) -> None:
        self.script.setdefault(path, deque()).append((status, body, headers))


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fake.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)})
            scripted = fake.script.get(self.path)
            if scripted:
                status, body, headers = scripted.popleft()
            elif self.path == "/api/chat.postMessage":
                ok = self.headers.get("Authorization") == f"Bearer {TOKEN}"
                status, headers = 200, {}
                body = json.dumps({"ok": True, "channel": "C0DIGEST", "ts": "1700000000.000100"} if ok
                                  else {"ok": False, "error": "invalid_auth"})
            elif self.path == SECRET_PATH:
                status, body, headers = 200, "ok", {}
            else:
                status, body, headers = 404, "no_service", {}
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if body.startswith("{") else "text/html")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
            pass

    return Handler


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(5)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- delivery ---------------------------------------------------------------------------------------------

def test_webhook_posts_the_message_as_json(slack: FakeSlack) -> None:
    message = render_slack(full_digest())
    SlackWebhook(slack.url + SECRET_PATH, timeout=5).send(message)
    (request,) = slack.requests
    assert request["path"] == SECRET_PATH
    assert request["json"] == {**message, "unfurl_links": False, "unfurl_media": False}


def test_bot_posts_to_chat_post_message_with_its_token(slack: FakeSlack) -> None:
    message = render_slack(full_digest())
    SlackBot(TOKEN, "C0DIGEST", base_url=slack.url + "/api/", timeout=5).send(message)
    (request,) = slack.requests
    assert request["path"] == "/api/chat.postMessage"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["json"]["channel"] == "C0DIGEST"
    assert request["json"]["text"] == message["text"] and request["json"]["blocks"] == message["blocks"]


def test_webhook_retries_500_and_429_then_succeeds(slack: FakeSlack) -> None:
    slack.then(SECRET_PATH, 500, "internal_error")
    slack.then(SECRET_PATH, 429, "rate_limited", **{"Retry-After": "7"})
    sleeps = Sleeps()
    channel = SlackWebhook(slack.url + SECRET_PATH, timeout=5)
    deliver(lambda: channel.send(render_slack(full_digest())), attempts=3, backoff=2.0, sleep=sleeps)
    assert len(slack.requests) == 3
    assert sleeps == [2.0, 7.0]  # backoff first, then the server's Retry-After


def test_bot_retries_a_rate_limit_then_succeeds(slack: FakeSlack) -> None:
    slack.then("/api/chat.postMessage", 429, json.dumps({"ok": False, "error": "ratelimited"}),
               **{"Retry-After": "3"})
    sleeps = Sleeps()
    channel = SlackBot(TOKEN, "C0DIGEST", base_url=slack.url + "/api/", timeout=5)
    deliver(lambda: channel.send(render_slack(full_digest())), sleep=sleeps)
    assert len(slack.requests) == 2 and sleeps == [3.0]


def test_retries_stop_after_the_last_attempt(slack: FakeSlack) -> None:
    for _ in range(3):
        slack.then(SECRET_PATH, 503, "unavailable")
    sleeps = Sleeps()
    channel = SlackWebhook(slack.url + SECRET_PATH, timeout=5)
    with pytest.raises(DeliveryError, match=r"HTTP 503: unavailable \(gave up after 3 attempts\)") as err:
        deliver(lambda: channel.send(render_slack(full_digest())), attempts=3, backoff=1.0, sleep=sleeps)
    assert len(slack.requests) == 3 and sleeps == [1.0, 2.0]
    assert err.value.retryable


def test_webhook_404_is_final_and_never_shows_the_secret_path(slack: FakeSlack,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = slack.url + SECRET_PATH.replace("xoxsecret", "gonesecret")
    channel = SlackWebhook(url, timeout=5)
    with pytest.raises(DeliveryError) as err:
        deliver(lambda: channel.send(render_slack(full_digest())), sleep=Sleeps())
    assert len(slack.requests) == 1 and not err.value.retryable
    assert str(err.value) == f"slack-webhook {slack.url}/…: HTTP 404: no_service"
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)
    assert "SECRET" not in str(err.value) + repr(channel) and "gonesecret" not in str(err.value)
    assert caplog.records and "SECRET" not in caplog.text and "gonesecret" not in caplog.text


def test_bot_invalid_token_is_final_and_never_shows_the_token(slack: FakeSlack,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "xoxb-9999-wrong-supersecret"
    channel = SlackBot(wrong, "C0DIGEST", base_url=slack.url + "/api/", timeout=5)
    with pytest.raises(DeliveryError, match="chat.postMessage failed: HTTP 200, invalid_auth") as err:
        deliver(lambda: channel.send(render_slack(full_digest())), sleep=Sleeps())
    assert len(slack.requests) == 1 and not err.value.retryable
    assert "supersecret" not in str(err.value) + repr(channel)
    assert caplog.records and "supersecret" not in caplog.text


def test_unreachable_server_is_retryable_and_hides_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    channel = SlackWebhook(f"http://127.0.0.1:{port}{SECRET_PATH}", timeout=2)
    with pytest.raises(DeliveryError) as err:
        deliver(lambda: channel.send(render_slack(full_digest())), attempts=2, sleep=Sleeps())
    assert err.value.retryable and "gave up after 2 attempts" in str(err.value)
    assert "\n" not in str(err.value) and "SECRET" not in str(err.value) and "SECRET" not in caplog.text


def test_a_message_over_the_limits_is_refused_before_sending(slack: FakeSlack) -> None:
    message = {"text": "x", "blocks": [_section("a")] * 60}
    with pytest.raises(DeliveryError, match="breaks Slack's limits: message: 60 blocks"):
        SlackWebhook(slack.url + SECRET_PATH, timeout=5).send(message)
    assert slack.requests == []


@pytest.mark.parametrize("url", ["http://hooks.slack.com/services/T/B/x", "ftp://127.0.0.1/x"])
def test_webhook_secrets_travel_over_https_only(url: str) -> None:
    with pytest.raises(ValueError, match="https://"):
        SlackWebhook(url)
    with pytest.raises(ValueError, match="https://"):
        SlackBot(TOKEN, "C1", base_url=url)


def test_findings_with_hostile_names_arrive_escaped(slack: FakeSlack) -> None:
    SlackWebhook(slack.url + SECRET_PATH, timeout=5).send(render_slack(big_digest(30)))
    received = json.dumps(slack.requests[0]["json"], ensure_ascii=False)
    assert "<!channel>" not in received and "<!here>" not in received and "&lt;!channel&gt;" in received
