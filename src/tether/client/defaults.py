"""A session's defaults and how one call combines with them: written once for both sessions.

`SessionDefaults` holds what ``Session`` and ``AsyncSession`` take beyond the pool's settings
(base URL, params, headers, cookies, auth, redirects, hooks, the environment) and turns one
call's arguments into a `Flow`. Precedence, most specific first:

- auth: the call's ``auth=``, the session's ``auth``, userinfo in the URL, ``.netrc``
  (``trust_env``), nothing;
- params and headers: the call's, then the session's (a None header value removes one);
- redirects: the call's ``allow_redirects=`` (or httpx's ``follow_redirects=``), then the
  session's ``follow_redirects`` (True by default, as in requests).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import parse_qsl

from ..cookiejar import Cookies, CookieTypes
from ..io.tls import VerifyTypes
from ..models import URL, HeaderInput, QueryParams, Request, parse_url
from ..requestbody import FilesTypes, FormTypes
from .auth import Auth, AuthTypes, BasicAuth, auth_of
from .build import build_request, default_headers
from .cookies import scoped_cookies
from .env import Environment
from .flow import Flow

__all__ = ["DEFAULT_MAX_REDIRECTS", "EventHooks", "SessionDefaults"]

DEFAULT_MAX_REDIRECTS = 30  # requests' default
EventHooks = Mapping[str, Iterable[Callable[..., Any]]] | None
_HOOK_NAMES = ("request", "response")


class SessionDefaults:
    """The user-facing defaults both sessions keep as public attributes (requests' names)."""

    def _init_defaults(
        self,
        *,
        headers: HeaderInput,
        cookies: CookieTypes,
        auth: AuthTypes,
        params: QueryParams,
        base_url: str | URL | None,
        follow_redirects: bool,
        max_redirects: int,
        event_hooks: EventHooks,
        trust_env: bool,
    ) -> None:
        self.headers = default_headers(headers)
        self.cookies: CookieJar = Cookies(cookies)
        self.auth: AuthTypes = auth_of(auth)  # checked now: a bad auth= fails at construction
        self.params = params
        self.base_url = _base_url(base_url)
        self.follow_redirects = follow_redirects
        if isinstance(max_redirects, bool) or not isinstance(max_redirects, int):
            raise TypeError(f"max_redirects must be an int, not {max_redirects!r}")
        if max_redirects < 0:
            raise ValueError(f"max_redirects cannot be negative: {max_redirects}")
        self.max_redirects = max_redirects
        self.event_hooks = _hooks(event_hooks)
        self.trust_env = trust_env
        self._env = Environment.read(trust_env)

    def _verify(self, verify: VerifyTypes) -> VerifyTypes:
        return self._env.verify(verify)

    def _flow(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams,
        data: bytes | str | FormTypes | Iterable[bytes] | AsyncIterable[bytes],
        json: Any,
        headers: HeaderInput,
        files: FilesTypes,
        cookies: CookieTypes,
        auth: AuthTypes,
        allow_redirects: bool | None,
        follow_redirects: bool | None,
    ) -> Flow:
        """The flow of one call: the built request and every rule that applies to it."""
        target = self._merge_url(url)
        merged = _merge_params(self.params, params)
        req = build_request(
            method,
            target,
            self.headers,
            params=merged,
            data=data,
            json=json,
            headers=headers,
            files=files,
        )
        if not isinstance(self.cookies, CookieJar):  # someone assigned a dict
            self.cookies = Cookies(self.cookies)
        return Flow(
            req,
            auth=self._auth_for(req, auth),
            jar=self.cookies,
            request_jar=scoped_cookies(cookies, req.url),
            follow=_follow(allow_redirects, follow_redirects, self.follow_redirects),
            max_redirects=self.max_redirects,
            auth_elsewhere=self._netrc_auth if self._env.netrc_path else None,
        )

    def _auth_for(self, req: Request, auth: AuthTypes) -> Auth | None:
        chosen = auth_of(auth) or auth_of(self.auth)
        if chosen is not None or req.url.auth is not None:
            return chosen  # URL userinfo is already the request's Authorization
        return self._netrc_auth(req)

    def _netrc_auth(self, req: Request) -> Auth | None:
        if self._env.netrc_path is None or "authorization" in req.wire_headers():
            return None
        found = self._env.auth_for(req.url)
        return BasicAuth(*found) if found else None

    def _merge_url(self, url: str | URL) -> str | URL:
        base = self.base_url
        if base is None or isinstance(url, URL) or "://" in url.partition("?")[0]:
            return url
        if url.startswith("//"):
            return f"{base.origin.scheme}:{url}"
        path = str(base).rstrip("/")
        if "?" in path:
            raise ValueError(f"base_url cannot have a query string: {base}")
        return f"{path}/{url.lstrip('/')}" if url else str(base)


def _base_url(value: str | URL | None) -> URL | None:
    if value is None:
        return None
    url = parse_url(value)
    if "?" in url.target:
        raise ValueError(f"base_url cannot have a query string: {url}")
    return url


def _follow(allow: bool | None, follow: bool | None, default: bool) -> bool:
    if allow is not None and follow is not None and allow != follow:
        raise TypeError("allow_redirects and follow_redirects disagree: pass only one")
    chosen = allow if allow is not None else follow
    return default if chosen is None else bool(chosen)


def _hooks(hooks: EventHooks) -> dict[str, list[Callable[..., Any]]]:
    result: dict[str, list[Callable[..., Any]]] = {name: [] for name in _HOOK_NAMES}
    for name, funcs in (hooks or {}).items():
        if name not in result:
            raise ValueError(f"unknown event hook {name!r} (request, response)")
        listed: list[Callable[..., Any]] = [funcs] if callable(funcs) else list(funcs)
        for func in listed:
            if not callable(func):
                raise TypeError(f"event hook {name!r}: {func!r} is not callable")
        result[name] = listed
    return result


def _pairs(params: QueryParams) -> list[tuple[str, object]]:
    if isinstance(params, bytes):
        params = params.decode("ascii")
    if isinstance(params, str):
        return list(parse_qsl(params.lstrip("?"), keep_blank_values=True))
    assert params is not None
    return list(params.items() if isinstance(params, Mapping) else params)


def _merge_params(session: QueryParams, call: QueryParams) -> QueryParams:
    """The call's params over the session's: a name the call gives replaces the session's."""
    if not session:
        return call
    if not call:
        return session
    mine = _pairs(call)
    names = {name for name, _ in mine}
    return [(n, v) for n, v in _pairs(session) if n not in names] + mine
