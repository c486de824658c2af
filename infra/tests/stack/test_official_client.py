"""The simulator speaks WriftAI as the official Python client (wriftai 0.34) expects:
create (with and without wait), get, list (statuses, pagination), cancel, wait, and
webhook signatures that the client's own `verify` accepts.

Runs against a simulator that is already running, named by WRIFTAI_API_BASE_URL
(for example http://127.0.0.1:8768/v1) and WRIFTAI_ACCESS_TOKEN. Skipped when
WRIFTAI_API_BASE_URL is unset, and refused for anything but a loopback host, so it can
never send test traffic to the real API."""

import http.server
import json
import os
import queue
import threading
import time
import urllib.parse
import uuid

import pytest

wriftai = pytest.importorskip("wriftai")
from wriftai.predictions import CreateWaitOptions, Status, WaitOptions  # noqa: E402  (after the skip)

BASE_URL = os.environ.get("WRIFTAI_API_BASE_URL", "")
if not BASE_URL:
    pytest.skip("WRIFTAI_API_BASE_URL is not set: no simulator to test", allow_module_level=True)
if urllib.parse.urlsplit(BASE_URL).hostname not in {"127.0.0.1", "localhost", "::1"}:
    pytest.skip(f"{BASE_URL} is not a local simulator; refusing to test against it", allow_module_level=True)

FAST = WaitOptions(poll_interval=0.05)
TERMINAL = {"succeeded", "failed", "cancelled", "abandoned"}


@pytest.fixture(scope="module")
def client():
    # Both settings come from the environment, as the client reads them by default.
    return wriftai.Client()


def test_create_without_wait_answers_at_once_and_get_follows_it(client):
    created = client.predictions.create(model="acme/echo", input={"prompt": "hi"})
    uuid.UUID(created["id"])
    assert created["status"] not in TERMINAL
    assert created["model"] == {"owner": "acme", "name": "echo", "version_number": 1}
    fetched = client.predictions.get(created["id"])
    assert fetched["id"] == created["id"]
    done = client.predictions.wait(created["id"], options=FAST)
    assert done["status"] == "succeeded"
    assert done["output"] == "echo: hi"
    assert done["error"] is None


def test_create_with_wait_answers_the_finished_prediction(client):
    done = client.predictions.create(
        model="acme/echo:2", input={"prompt": "hello"}, wait=True, validate_input=True
    )
    assert done["status"] == "succeeded"
    assert done["output"] == "echo: hello"
    # A fractional duration goes out as `Prefer: wait=5.0`.
    done = client.predictions.create(
        model="acme/fail", input={}, wait=True, wait_options=CreateWaitOptions(duration=5.0)
    )
    assert done["status"] == "failed"
    assert done["output"] is None
    assert done["error"]["source"] == "internal"


def test_list_filters_by_status_and_pages_with_cursors(client):
    ours = {client.predictions.create(model="acme/echo", input={"i": i}, wait=True)["id"] for i in range(3)}
    seen, pages, cursor = [], 0, None
    while not ours <= {p["id"] for p in seen} and pages < 50:
        options = {"statuses": [Status.SUCCEEDED], "page_size": 2}
        if cursor:
            options["cursor"] = cursor
        page = client.predictions.list(pagination_options=options)
        assert len(page.items) <= 2
        assert all(p["status"] == "succeeded" for p in page.items)
        seen.extend(page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert ours <= {p["id"] for p in seen}
    assert pages >= 2, "three items at two a page take more than one page"
    assert len({p["id"] for p in seen}) == len(seen), "pages do not overlap"
    created = [p["created_at"] for p in seen]
    assert created == sorted(created, reverse=True), "newest first"


def test_cancel_ends_a_running_prediction(client):
    running = client.predictions.create(model="acme/never", input={})
    deadline = time.monotonic() + 10
    while client.predictions.get(running["id"])["status"] != "started":
        assert time.monotonic() < deadline, "the prediction never started"
        time.sleep(0.05)
    assert client.predictions.cancel(running["id"]) is None
    assert client.predictions.wait(running["id"], options=FAST)["status"] == "cancelled"


class _Capture(http.server.BaseHTTPRequestHandler):
    """Keeps each webhook's raw body and signature header for the test."""

    received: "queue.Queue[tuple[bytes, str | None]]" = queue.Queue()

    def do_POST(self):  # noqa: N802 (the name http.server calls)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.put((body, self.headers.get("wriftai-webhook-signature")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Capture.received
    server.shutdown()
    server.server_close()


def test_the_official_verify_accepts_the_simulators_signatures(client, receiver):
    url, received = receiver
    secret = f"whsec_{uuid.uuid4().hex}"
    created = client.predictions.create(model="acme/echo", input={"prompt": "signed"},
                                        webhook={"url": url, "secret": secret})
    statuses = []
    while "succeeded" not in statuses:
        body, header = received.get(timeout=10)
        prediction = json.loads(body)
        assert prediction["id"] == created["id"]
        statuses.append(prediction["status"])
        assert header is not None, "a webhook with a secret is signed"
        wriftai.verify_webhook(body, header, secret)
        with pytest.raises(wriftai.WebhookSignatureMismatchError):
            wriftai.verify_webhook(body, header, secret + "x")
        with pytest.raises(wriftai.WebhookSignatureMismatchError):
            wriftai.verify_webhook(body + b" ", header, secret)
    assert statuses[0] == "pending"
