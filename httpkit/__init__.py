"""Shared HTTP plumbing for every First Price Twitter service.

Routing table, error type, JSON request/response helpers, the one-write HTTP/1.1 server,
the pooled keep-alive client, and environment configuration helpers.
"""
from httpkit.client import Upstream, UpstreamError, UpstreamResponse, UpstreamTimeout
from httpkit.errors import HTTPError
from httpkit.messages import Request, Response, json_response, optional, page_params, require
from httpkit.routing import Router
from httpkit.process import serve
from httpkit.server import Server

__all__ = [
    "HTTPError", "Request", "Response", "Router", "Server", "Upstream", "UpstreamError",
    "UpstreamResponse", "UpstreamTimeout", "json_response", "optional", "page_params", "require",
    "serve",
]
