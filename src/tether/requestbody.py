"""Turning what a user passes (form fields, JSON, text, bytes, an iterator) into a request body."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from .models import HeaderInput, Headers

__all__ = ["FORM_METHODS", "body_headers", "encode_body"]

# Methods whose ``fields`` go into a form-encoded body rather than the query (urllib3's rule).
FORM_METHODS = frozenset({"POST", "PUT", "PATCH"})

BodyTypes = bytes | str | Iterable[bytes] | None
FormTypes = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


def body_headers(base: Headers, extra: HeaderInput, content_type: str | None) -> Headers:
    """``base`` with the caller's ``extra`` headers, plus the body's Content-Type unless set.

    Returns ``base`` itself when nothing is added (a Request shares it until asked).
    """
    merged = base.merged(extra) if extra else base
    if content_type is not None and "content-type" not in merged:
        merged = merged.merged({"Content-Type": content_type})
    return merged


def encode_body(
    content: BodyTypes = None, form: FormTypes = None, json: Any = None
) -> tuple[BodyTypes, str | None]:
    """The body to send and the Content-Type it implies (None: leave Content-Type alone).

    ``content`` is passed through (``Request`` encodes a str as UTF-8 and sends an iterable of
    bytes chunked); ``form`` is URL-encoded; ``json`` is serialised compactly.
    """
    if form is None and json is None:
        return content, None  # Request turns str and bytearray into bytes
    if content is not None or (form is not None and json is not None):
        raise TypeError("pass only one of a body, form fields or json")
    if json is not None:
        try:
            text = jsonlib.dumps(json, separators=(",", ":"), allow_nan=False)
        except ValueError as exc:  # NaN and Infinity are not JSON: most servers refuse them
            raise ValueError(f"json= body cannot be sent as JSON (RFC 8259): {exc}") from None
        return text.encode(), "application/json"
    assert form is not None
    pairs = list(form.items()) if isinstance(form, Mapping) else list(form)
    return urlencode(pairs, doseq=True).encode("ascii"), "application/x-www-form-urlencoded"
