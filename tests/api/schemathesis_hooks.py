"""Schemathesis hooks of tests/api/test_schemathesis.py (loaded by Schemathesis, not pytest).

A client makes a fresh Idempotency-Key for each new request (the draft suggests a UUID).
Schemathesis draws keys from the documented pattern, whose shortest values come again and
again: the same key with the same body is then a replay of an answer that may name a tweet
deleted since (Schemathesis reads that as a created resource gone missing), and with another
body a 422. So every key that fits the pattern becomes a fresh one, still fitting it; keys
that do not fit are sent as drawn, for the API to refuse.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

from api.openapi import PARAMETERS

KEY_PATTERN = re.compile(PARAMETERS["IdempotencyKey"]["schema"]["pattern"])


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case,
                kwargs: dict[str, Any]) -> None:
    """Give a valid Idempotency-Key a value no request had before."""
    if case.headers is None:
        return
    for name, value in list(case.headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) \
                and KEY_PATTERN.fullmatch(value):
            case.headers[name] = uuid.uuid4().hex
