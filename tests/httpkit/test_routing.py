"""Unit tests of httpkit.routing: the routing table alone, no sockets."""
from __future__ import annotations

from http import HTTPStatus

import pytest

from httpkit import HTTPError, Request, Response, Router
from httpkit.routing import Handler


def answering(name: str) -> Handler:
    """A handler that says which route it is, so a test can tell routes apart."""
    def handler(request: Request) -> Response:
        return Response(HTTPStatus.OK, name.encode())
    return handler


def routed_to(router: Router, method: str, path: str) -> tuple[str, dict[str, str]]:
    """Which route a request reaches, and the parameters taken from its path."""
    handler, params = router.match(method, path)
    request = Request(method, path, path, "", {})
    return handler(request).body.decode(), params


def refusal(router: Router, method: str, path: str) -> HTTPError:
    with pytest.raises(HTTPError) as caught:
        router.match(method, path)
    return caught.value


@pytest.fixture
def router() -> Router:
    router = Router()
    router.add("GET", "/tweets", answering("timeline"))
    router.add("POST", "/tweets", answering("post"))
    router.add("GET", "/tweets/search", answering("search"))
    router.add("GET", "/tweets/{id}", answering("show"))
    router.add("PUT", "/tweets/{id}", answering("edit"))
    router.add("DELETE", "/tweets/{id}", answering("delete"))
    router.add("POST", "/tweets/{id}/like", answering("like"))
    router.add("GET", "/accounts/{number:[0-9]+}", answering("account"))
    router.add("GET", "/hashtags/{tag}/tweets", answering("hashtag"))
    return router


def test_an_unknown_path_is_404(router: Router) -> None:
    error = refusal(router, "GET", "/nowhere")
    assert error.status == HTTPStatus.NOT_FOUND
    assert error.code == "not_found"


def test_a_known_path_with_another_method_is_405_listing_the_allowed_ones(router: Router) -> None:
    error = refusal(router, "PATCH", "/tweets/7")
    assert error.status == HTTPStatus.METHOD_NOT_ALLOWED
    assert error.code == "method_not_allowed"
    assert error.headers == {"Allow": "DELETE, GET, HEAD, PUT"}


def test_allow_names_head_only_where_get_is_allowed(router: Router) -> None:
    error = refusal(router, "GET", "/tweets/7/like")
    assert error.headers == {"Allow": "POST"}


def test_head_is_answered_by_the_get_route(router: Router) -> None:
    assert routed_to(router, "HEAD", "/tweets/7") == ("show", {"id": "7"})


def test_head_on_a_path_without_get_is_405(router: Router) -> None:
    assert refusal(router, "HEAD", "/tweets/7/like").status == HTTPStatus.METHOD_NOT_ALLOWED


def test_the_same_path_reaches_a_route_per_method(router: Router) -> None:
    assert routed_to(router, "GET", "/tweets") == ("timeline", {})
    assert routed_to(router, "POST", "/tweets") == ("post", {})
    assert routed_to(router, "DELETE", "/tweets/9") == ("delete", {"id": "9"})


def test_a_name_parameter_takes_one_path_segment(router: Router) -> None:
    assert routed_to(router, "GET", "/hashtags/python/tweets") == ("hashtag", {"tag": "python"})
    assert refusal(router, "GET", "/hashtags/a/b/tweets").status == HTTPStatus.NOT_FOUND
    assert refusal(router, "GET", "/hashtags//tweets").status == HTTPStatus.NOT_FOUND


def test_a_regex_parameter_takes_only_what_its_pattern_allows(router: Router) -> None:
    assert routed_to(router, "GET", "/accounts/123") == ("account", {"number": "123"})
    assert refusal(router, "GET", "/accounts/abc").status == HTTPStatus.NOT_FOUND
    assert refusal(router, "GET", "/accounts/12ab").status == HTTPStatus.NOT_FOUND


def test_earlier_routes_win_so_search_is_not_a_tweet_id(router: Router) -> None:
    assert routed_to(router, "GET", "/tweets/search") == ("search", {})
    assert routed_to(router, "GET", "/tweets/42") == ("show", {"id": "42"})


def test_route_order_is_what_decides() -> None:
    router = Router()
    router.add("GET", "/tweets/{id}", answering("show"))
    router.add("GET", "/tweets/search", answering("search"))
    assert routed_to(router, "GET", "/tweets/search") == ("show", {"id": "search"})


def test_a_path_must_match_the_whole_template(router: Router) -> None:
    assert refusal(router, "GET", "/tweets/7/extra").status == HTTPStatus.NOT_FOUND
    assert refusal(router, "GET", "/api/tweets").status == HTTPStatus.NOT_FOUND
    assert refusal(router, "GET", "/tweets/").status == HTTPStatus.NOT_FOUND


def test_a_fallback_answers_unknown_paths_but_not_wrong_methods() -> None:
    router = Router(fallback=answering("forward"))
    router.add("GET", "/healthz", answering("health"))
    assert routed_to(router, "GET", "/healthz") == ("health", {})
    assert routed_to(router, "DELETE", "/tweets/7") == ("forward", {})
    assert refusal(router, "POST", "/healthz").status == HTTPStatus.METHOD_NOT_ALLOWED


def test_literal_text_in_a_template_matches_only_itself() -> None:
    router = Router()
    router.add("GET", "/openapi.json", answering("openapi"))
    assert refusal(router, "GET", "/openapiXjson").status == HTTPStatus.NOT_FOUND


def test_a_regex_parameter_may_use_a_counted_quantifier() -> None:
    router = Router()
    router.add("GET", "/status/{code:[0-9]{3}}", answering("status"))
    assert routed_to(router, "GET", "/status/404") == ("status", {"code": "404"})
