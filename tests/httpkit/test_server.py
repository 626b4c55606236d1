"""Service tests of httpkit.server: the demo service on a real socket, spoken to with the
standard library's http.client, as any HTTP client would."""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpkit
from httpkit import Router, Server, Upstream
from tests.fakes import wait_until
from tests.httpkit.helpers import SECRET, CountingServer, StartServer, server_address
from tests.harness import start_in_thread, stop_thread


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> dict[str, str]:
        """The error document every failure carries: {"error": {"code", "message"}}."""
        document = self.json()
        assert list(document) == ["error"] and sorted(document["error"]) == ["code", "message"]
        return dict(document["error"])


def ask(server: Server, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> Answer:
    """Send one request on a new connection and read the whole answer."""
    connection = http.client.HTTPConnection(*server_address(server), timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def post_json(server: Server, path: str, payload: Any) -> Answer:
    return ask(server, "POST", path, json.dumps(payload).encode(),
               {"Content-Type": "application/json"})


def test_a_route_answers_json(server: Server) -> None:
    answer = ask(server, "GET", "/hello")
    assert answer.status == HTTPStatus.OK
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"hello": "world"}


def test_an_unknown_path_is_a_json_404(server: Server) -> None:
    answer = ask(server, "GET", "/nowhere")
    assert answer.status == HTTPStatus.NOT_FOUND
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.error() == {"code": "not_found", "message": "no route for /nowhere"}


def test_another_method_on_a_known_path_is_405_with_allow(server: Server) -> None:
    answer = ask(server, "POST", "/tweets/7", b"{}")
    assert answer.status == HTTPStatus.METHOD_NOT_ALLOWED
    assert answer.headers["Allow"] == "DELETE, GET, HEAD"
    assert answer.error()["code"] == "method_not_allowed"


def test_search_is_routed_before_the_tweet_id(server: Server) -> None:
    assert ask(server, "GET", "/tweets/search?q=hello%20world").json() == {
        "route": "search", "q": "hello world"}
    assert ask(server, "GET", "/tweets/42").json() == {"route": "tweet", "id": "42"}


def test_path_parameters_are_percent_decoded(server: Server) -> None:
    assert ask(server, "GET", "/tweets/caf%C3%A9").json() == {"route": "tweet", "id": "café"}


def test_a_regex_parameter_refuses_what_it_does_not_match(server: Server) -> None:
    assert ask(server, "GET", "/accounts/12").json() == {"number": 12}
    assert ask(server, "GET", "/accounts/twelve").status == HTTPStatus.NOT_FOUND


def test_an_http_error_becomes_its_status_with_a_json_body_and_its_headers(
        server: Server) -> None:
    answer = ask(server, "GET", "/teapot")
    assert answer.status == HTTPStatus.IM_A_TEAPOT
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Retry-After"] == "120"
    assert answer.error() == {"code": "im_a_teapot", "message": "I only make tea"}


def test_a_crashing_handler_is_a_generic_500_and_the_server_keeps_serving(
        server: Server) -> None:
    connection = http.client.HTTPConnection(*server_address(server), timeout=5)
    connection.request("GET", "/boom")
    response = connection.getresponse()
    body = response.read()
    assert response.status == HTTPStatus.INTERNAL_SERVER_ERROR
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": {"code": "internal_error",
                                          "message": "something went wrong on our side"}}
    assert b"Traceback" not in body and SECRET.encode() not in body
    connection.request("GET", "/hello")  # the same connection still works
    assert connection.getresponse().read() == b'{"hello":"world"}'
    connection.close()
    assert ask(server, "GET", "/hello").status == HTTPStatus.OK


def test_malformed_json_is_400_malformed_json(server: Server) -> None:
    answer = ask(server, "POST", "/echo", b'{"text": "unfinished',
                 {"Content-Type": "application/json"})
    assert answer.status == HTTPStatus.BAD_REQUEST
    assert answer.error()["code"] == "malformed_json"


def test_a_json_body_that_is_not_an_object_is_400(server: Server) -> None:
    answer = post_json(server, "/echo", ["a", "list"])
    assert answer.status == HTTPStatus.BAD_REQUEST
    assert answer.error() == {"code": "malformed_json",
                              "message": "the body must be a JSON object"}


def test_a_json_object_round_trips(server: Server) -> None:
    payload = {"text": "héllo <script>", "tags": ["a"], "n": 1.5}
    assert post_json(server, "/echo", payload).json() == {"received": payload}


def test_typed_fields_are_checked(server: Server) -> None:
    assert post_json(server, "/typed", {"count": 2}).json() == {
        "count": 2, "note": "none", "flag": False}
    assert post_json(server, "/typed", {"count": 2, "note": "hi", "flag": True}).json() == {
        "count": 2, "note": "hi", "flag": True}
    for wrong in ({}, {"count": "2"}, {"count": True}, {"count": 2, "note": 3},
                  {"count": 2, "flag": "yes"}):
        answer = post_json(server, "/typed", wrong)
        assert answer.status == HTTPStatus.BAD_REQUEST, wrong
        assert answer.error()["code"] == "invalid_field", wrong


def test_exactly_64_kib_is_accepted(server: Server) -> None:
    answer = ask(server, "POST", "/count", b"x" * 65536)
    assert answer.json() == {"bytes": 65536}


def test_one_byte_over_64_kib_is_413(server: Server) -> None:
    answer = ask(server, "POST", "/count", b"x" * 65537)
    assert answer.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert answer.error() == {"code": "body_too_large", "message": "body too large"}
    assert answer.headers["Connection"] == "close"


def test_head_has_the_get_headers_but_no_body(server: Server) -> None:
    connection = http.client.HTTPConnection(*server_address(server), timeout=5)
    connection.request("HEAD", "/hello")
    response = connection.getresponse()
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Length"] == str(len(b'{"hello":"world"}'))
    assert response.read() == b""
    connection.request("GET", "/hello")  # nothing stray is left on the connection
    assert connection.getresponse().read() == b'{"hello":"world"}'
    connection.close()


def send_200_requests(send_one_request: Callable[[], None]) -> tuple[int, float]:
    """Send up to 200 requests one after the other; give up once a second has passed (a
    stalling server would take ~8 s). Return how many were answered and the time taken."""
    started = time.perf_counter()
    answered = 0
    while answered < 200 and time.perf_counter() - started < 1.0:
        send_one_request()
        answered += 1
    return answered, time.perf_counter() - started


def test_200_keep_alive_requests_with_http_client_take_under_a_second(
        start_server: StartServer) -> None:
    # A response written in two sends meets Nagle + delayed ACK: ~40 ms each, ~8 s for 200.
    server = start_server(server_class=CountingServer)
    connection = http.client.HTTPConnection(*server_address(server), timeout=5)

    def get_hello() -> None:
        connection.request("GET", "/hello")
        assert connection.getresponse().read() == b'{"hello":"world"}'

    answered, elapsed = send_200_requests(get_hello)
    connection.close()
    assert answered == 200 and elapsed < 1.0
    assert isinstance(server, CountingServer) and server.accepted == 1


def test_200_keep_alive_requests_with_upstream_take_under_a_second(
        start_server: StartServer) -> None:
    server = start_server(server_class=CountingServer)
    upstream = Upstream(server.url)

    def get_hello() -> None:
        assert upstream.request("GET", "/hello").body == b'{"hello":"world"}'

    answered, elapsed = send_200_requests(get_hello)
    upstream.close()
    assert answered == 200 and elapsed < 1.0
    assert isinstance(server, CountingServer) and server.accepted == 1


def test_start_hooks_run_when_serving_begins_and_close_hooks_once() -> None:
    events: list[str] = []
    server = Server(("127.0.0.1", 0), Router(), name="hooks")
    server.on_start.append(lambda: events.append("started"))
    server.on_close.append(lambda: events.append("closed"))
    assert events == []
    thread = start_in_thread(server)
    try:
        assert ask(server, "GET", "/anything").status == HTTPStatus.NOT_FOUND  # serving by now
        assert events == ["started"]
    finally:
        stop_thread(server, thread)
    server.server_close()  # a second close must not run the hooks again
    assert events == ["started", "closed"]


def test_stopping_finishes_the_requests_under_way_before_the_close_hooks_run() -> None:
    # A like taken as the api stops must be answered and journaled, not meet a closed journal
    # (before: 500 "Cannot operate on a closed database").
    release, entered = threading.Event(), threading.Event()
    events: list[str] = []

    def slow(request: httpkit.Request) -> httpkit.Response:
        entered.set()
        release.wait(5)
        events.append("answered")
        return httpkit.json_response({"ok": True})

    router = Router()
    router.add("GET", "/slow", slow)
    server = Server(("127.0.0.1", 0), router)
    server.on_stop.append(lambda: events.append("stopping"))
    server.on_close.append(lambda: events.append("closed"))
    thread = start_in_thread(server)
    answers: list[Answer] = []
    asking = threading.Thread(target=lambda: answers.append(ask(server, "GET", "/slow")))
    asking.start()
    assert entered.wait(5)
    server.shutdown()  # what SIGTERM does: no more connections accepted
    thread.join(5)
    closing = threading.Thread(target=server.server_close)
    closing.start()
    assert wait_until(lambda: events == ["stopping"])
    closing.join(0.2)
    assert closing.is_alive() and events == ["stopping"]  # the close waits for the request
    release.set()
    asking.join(5)
    closing.join(5)
    assert events == ["stopping", "answered", "closed"]
    [answer] = answers
    assert answer.status == 200 and answer.headers["Connection"] == "close"


def test_a_request_arriving_once_the_close_hooks_may_run_gets_no_answer() -> None:
    server = Server(("127.0.0.1", 0), Router())
    assert server.begin()
    server.end()
    server.drain(timeout=0)
    assert server.closing and not server.begin()  # its connection is closed, unanswered
    server.server_close()
