"""Turning what a user passes (form fields, JSON, text, bytes, an iterator) into a request body."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

__all__ = ["FORM_METHODS", "encode_body"]

# Methods whose ``fields`` go into a form-encoded body rather than the query (urllib3's rule).
FORM_METHODS = frozenset({"POST", "PUT", "PATCH"})

BodyTypes = bytes | str | Iterable[bytes] | None
FormTypes = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


def encode_body(
    content: BodyTypes = None, form: FormTypes = None, json: Any = None
) -> tuple[bytes | Iterable[bytes] | None, str | None]:
    """The body to send and the Content-Type it implies (None: leave Content-Type alone).

    A str is sent as UTF-8; an iterable of bytes that is not bytes is sent chunked and cannot
    be replayed; ``form`` is URL-encoded; ``json`` is serialised compactly.
    """
    if form is None and json is None:
        if isinstance(content, str):
            return content.encode("utf-8"), None
        if isinstance(content, (bytearray, memoryview)):
            return bytes(content), None
        return content, None
    if content is not None or (form is not None and json is not None):
        raise TypeError("pass only one of a body, form fields or json")
    if json is not None:
        return jsonlib.dumps(json, separators=(",", ":")).encode(), "application/json"
    assert form is not None
    pairs = list(form.items()) if isinstance(form, Mapping) else list(form)
    return urlencode(pairs, doseq=True).encode("ascii"), "application/x-www-form-urlencoded"
