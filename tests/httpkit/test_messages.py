"""Unit tests of httpkit.messages and httpkit.errors: requests, JSON helpers, error codes."""
from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import pytest

from httpkit import HTTPError, Request, json_response, optional, require


def request_with_body(body: bytes) -> Request:
    return Request("POST", "/echo", "/echo", "", {}, body)


def bad_request(body: bytes) -> HTTPError:
    with pytest.raises(HTTPError) as caught:
        request_with_body(body).json()
    return caught.value


def invalid_field(data: dict[str, Any], name: str, kind: type) -> HTTPError:
    with pytest.raises(HTTPError) as caught:
        require(data, name, kind)
    return caught.value


def test_a_json_object_body_is_decoded() -> None:
    body = json.dumps({"text": "héllo #python", "n": 3}).encode()
    assert request_with_body(body).json() == {"text": "héllo #python", "n": 3}


@pytest.mark.parametrize("body", [b"", b"{", b"{'single': 'quotes'}", b"\xff\xfe\xfa",
                                  b'{"a": 1} trailing'])
def test_malformed_json_is_400_malformed_json(body: bytes) -> None:
    error = bad_request(body)
    assert (error.status, error.code) == (HTTPStatus.BAD_REQUEST, "malformed_json")


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_a_json_body_that_is_not_an_object_is_400(body: bytes) -> None:
    error = bad_request(body)
    assert (error.status, error.code) == (HTTPStatus.BAD_REQUEST, "malformed_json")
    assert error.message == "the body must be a JSON object"


def test_deeply_nested_json_is_400_not_a_crash() -> None:
    error = bad_request(b"[" * 50_000)
    assert error.status == HTTPStatus.BAD_REQUEST


def test_require_returns_a_value_of_the_asked_type() -> None:
    data = {"text": "hi", "count": 3, "flag": False, "ratio": 0.5, "tags": ["a"], "meta": {}}
    assert require(data, "text", str) == "hi"
    assert require(data, "count", int) == 3
    assert require(data, "flag", bool) is False
    assert require(data, "ratio", float) == 0.5
    assert require(data, "tags", list) == ["a"]
    assert require(data, "meta", dict) == {}


@pytest.mark.parametrize("data,kind,message", [
    ({}, str, "'field' must be a string"),
    ({"field": None}, str, "'field' must be a string"),
    ({"field": 7}, str, "'field' must be a string"),
    ({"field": "7"}, int, "'field' must be an integer"),
    ({"field": 7.0}, int, "'field' must be an integer"),
    ({"field": "yes"}, bool, "'field' must be a boolean"),
    ({"field": "0.5"}, float, "'field' must be a number"),
])
def test_require_refuses_a_missing_or_mistyped_field(data: dict[str, Any], kind: type,
                                                     message: str) -> None:
    error = invalid_field(data, "field", kind)
    assert (error.status, error.code, error.message) == (HTTPStatus.BAD_REQUEST,
                                                         "invalid_field", message)


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_not_an_integer(flag: bool) -> None:
    assert invalid_field({"count": flag}, "count", int).message == "'count' must be an integer"


@pytest.mark.parametrize("kind,message", [(dict, "'field' must be an object"),
                                          (list, "'field' must be an array")])
def test_the_message_names_the_json_type_with_the_right_article(kind: type, message: str) -> None:
    assert invalid_field({"field": 1}, "field", kind).message == message


def test_optional_gives_the_default_when_absent_or_null() -> None:
    assert optional({}, "note", str, "none") == "none"
    assert optional({"note": None}, "note", str, "none") == "none"
    assert optional({"note": "hi"}, "note", str, "none") == "hi"
    assert optional({"flag": False}, "flag", bool, True) is False


def test_optional_still_refuses_a_wrong_type() -> None:
    with pytest.raises(HTTPError) as caught:
        optional({"limit": True}, "limit", int, 20)
    assert caught.value.status == HTTPStatus.BAD_REQUEST


def test_json_response_is_compact_utf8_json() -> None:
    response = json_response({"text": "café ☕", "n": [1, 2]}, HTTPStatus.CREATED,
                             [("Location", "/tweets/1")])
    assert response.status == HTTPStatus.CREATED
    assert response.body == '{"text":"café ☕","n":[1,2]}'.encode()
    assert response.headers == [("Content-Type", "application/json"), ("Location", "/tweets/1")]


def test_query_parameters_take_the_first_value_and_keep_blanks() -> None:
    request = Request("GET", "/t?q=a+b&q=second&cursor=&x=%23tag", "/t", "q=a+b&q=second"
                      "&cursor=&x=%23tag", {})
    assert request.query == {"q": "a b", "cursor": "", "x": "#tag"}


@pytest.mark.parametrize("status,code", [
    (HTTPStatus.NOT_FOUND, "not_found"),
    (HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed"),
    (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large"),
    (HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
    (HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error"),
    (HTTPStatus.NON_AUTHORITATIVE_INFORMATION, "non_authoritative_information"),
    (HTTPStatus.IM_A_TEAPOT, "im_a_teapot"),
    (HTTPStatus.GATEWAY_TIMEOUT, "gateway_timeout"),
])
def test_an_error_without_a_code_gets_the_snake_case_status_name(status: HTTPStatus,
                                                                 code: str) -> None:
    assert HTTPError(status, "why").code == code


def test_an_error_keeps_its_own_code_message_and_headers() -> None:
    error = HTTPError(401, "log in first", "bad_token", {"WWW-Authenticate": "Bearer"})
    assert error.status is HTTPStatus.UNAUTHORIZED
    assert (error.code, error.message) == ("bad_token", "log in first")
    assert str(error) == "log in first"
    assert error.headers == {"WWW-Authenticate": "Bearer"}
