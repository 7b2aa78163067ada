"""The next request of a redirect: a pure decision, the same for both sessions.

The rules (RFC 9110 §15.4 and the Fetch standard, with requests' CVEs in mind):

- 301 and 302 turn POST into GET; 303 turns every method but HEAD into GET; 307 and 308 keep
  the method and the body. (requests also turns a 302 PUT into GET; browsers do not.)
- When the method becomes GET the body goes, and the headers that describe it.
- ``Location`` may be relative (``/next``, ``next``, ``?q``) or scheme-relative
  (``//host/path``); spaces are percent-encoded, and a non-ASCII Location the server sent as
  raw UTF-8 is read as UTF-8. A scheme other than http or https (``file:``, ``ftp:``...) is
  refused with InvalidRedirect: a server must not make a client read local files.
- A hop that leaves the origin (scheme, host or port changes) drops ``Authorization``,
  ``Proxy-Authorization`` and any ``Cookie`` header the caller set; the session's jar then adds
  only the cookies scoped to the new host. https -> http always counts as leaving; the one
  change that does not is http:80 -> https:443 on the same host (an upgrade, as requests).
- 307/308 with a one-shot body (iterator, file) cannot be followed: BodyNotReplayable.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from ..exceptions import BodyNotReplayable, InvalidRedirect, InvalidURL
from ..models import URL, Origin, Request
from ..response import Response

__all__ = ["keeps_credentials", "next_request", "redirect_method", "resolve_location"]

# Headers that describe a body: meaningless once the method is GET without one.
_BODY_HEADERS = ("content-type", "content-length", "transfer-encoding", "content-encoding")
# Headers that carry credentials: never sent to an origin the caller did not address.
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")


def redirect_method(method: str, status: int) -> str:
    """The method of the next hop (the Fetch standard's rule)."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def keeps_credentials(old: Origin, new: Origin) -> bool:
    """May credentials for ``old`` go to ``new``? Same origin, or an http->https upgrade."""
    if old == new:
        return True
    return (
        old.host == new.host
        and (old.scheme, old.port) == ("http", 80)
        and (new.scheme, new.port) == ("https", 443)
    )


def resolve_location(base: URL, location: str) -> URL:
    """The absolute URL ``location`` points to from ``base``; InvalidRedirect if none."""
    try:  # header values arrive as latin-1; servers send non-ASCII Locations as UTF-8
        location = location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    location = location.strip()
    if not location:
        raise InvalidRedirect(f"empty Location in a redirect from {base}")
    try:
        scheme = urlsplit(location).scheme.lower()
    except ValueError as exc:
        raise InvalidRedirect(f"unparsable Location from {base}: {exc}") from None
    if scheme and scheme not in ("http", "https"):
        raise InvalidRedirect(
            f"redirect from {base} to a {scheme}: URL refused (only http and https are followed)"
        )
    target = urljoin(str(base), location.replace(" ", "%20"))
    try:
        return URL(target)
    except InvalidURL as exc:
        raise InvalidRedirect(f"invalid Location in a redirect from {base}: {exc}") from None


def next_request(request: Request, response: Response) -> Request:
    """The request that follows the redirect ``response`` to ``request``.

    ``request`` is the hop as the caller built it (before the session added cookies or auth,
    which it adds again for the new URL). Raises InvalidRedirect or BodyNotReplayable.
    """
    url = resolve_location(request.url, response.headers["location"])
    method = redirect_method(request.method, response.status)
    headers = request.wire_headers().copy()
    body = request.body
    if "host" in headers:
        del headers["host"]  # the new URL says where it goes
    if method == "GET" and request.method != "GET":
        body = None
        for name in _BODY_HEADERS:
            headers.pop(name, None)
    elif body is not None and not isinstance(body, bytes):
        raise BodyNotReplayable(
            f"{response.status} redirect to {url} asks to send the body again, but it was a "
            f"one-shot iterator or file",
            request=request,
            response=response,
        )
    if not keeps_credentials(request.url.origin, url.origin):
        for name in _CREDENTIAL_HEADERS:
            headers.pop(name, None)
    return Request(method, url, headers=headers, body=body)
