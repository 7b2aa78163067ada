"""One call's way through redirects, auth challenges and cookies: a state object both sessions
drive, so that every decision is made once.

The session asks `Flow.first()` for the request to send, sends it (``_send_one``: the pool,
hooks around it), and hands the response to `Flow.next()`, which returns the next request to
send or None when that response is the caller's. Between hops the session reads and closes
the previous response (its connection goes back to the pool, so hops reuse connections).

Per hop the flow adds the cookies the jars hold for the hop's URL, stores what Set-Cookie
sends back (into the session's jar and ``response.cookies``), runs the auth flow while the hop
stays on the origin the caller addressed (`redirects.keeps_credentials`), and asks
`redirects.next_request` where a redirect goes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from http.cookiejar import CookieJar

from ..cookiejar import Cookies
from ..exceptions import BodyNotReplayable, RedirectError, TooManyRedirects
from ..models import Request
from ..response import Response
from .auth import Auth, with_header
from .cookies import any_cookies, cookie_header, extract_cookies
from .redirects import keeps_credentials, next_request

__all__ = ["Flow"]

_Steps = Generator[Request, Response, None]


class Flow:
    """The requests one call sends: ``first()``, then ``next(response)`` until it is None.

    Args:
        request: the request as built from the caller's arguments.
        auth: applied to hops on the request's own origin.
        jar: the session's cookie jar (Set-Cookie is stored there).
        request_jar: the call's own ``cookies=`` (winning over the jar for a name).
        follow: follow redirects; if False a redirect is returned with ``response.next``.
        max_redirects: redirects followed before TooManyRedirects.
        auth_elsewhere: credentials for a hop on another origin (``.netrc``), or None.
    """

    def __init__(
        self,
        request: Request,
        *,
        auth: Auth | None,
        jar: CookieJar,
        request_jar: CookieJar | None,
        follow: bool,
        max_redirects: int,
        auth_elsewhere: Callable[[Request], Auth | None] | None = None,
    ) -> None:
        self._auth = auth
        self._jars = (request_jar, jar)
        self._jar = jar
        self._follow = follow
        self._max = max_redirects
        self._auth_elsewhere = auth_elsewhere
        self._steps = self._run(request)

    def first(self) -> Request:
        """The first request to send."""
        return next(self._steps)

    def next(self, response: Response) -> Request | None:
        """The request to send after ``response``, or None: ``response`` is the answer.

        Raises TooManyRedirects, InvalidRedirect or BodyNotReplayable (each carrying the
        response and the history) when the chain cannot go on.
        """
        try:
            return self._steps.send(response)
        except StopIteration:
            return None

    def _run(self, request: Request) -> _Steps:
        origin = request.url.origin
        history: list[Response] = []
        while True:
            if keeps_credentials(origin, request.url.origin):
                auth = self._auth
            else:
                auth = self._auth_elsewhere(request) if self._auth_elsewhere else None
            response = yield from self._hop(request, auth)
            if not response.is_redirect:
                break
            try:
                following = next_request(request, response)
            except RedirectError as exc:
                if not self._follow:
                    break  # not followed: the caller gets the redirect, and no ``next``
                exc.history = history
                raise
            if not self._follow:
                response.next = following
                break
            history.append(response)
            if len(history) > self._max:
                raise TooManyRedirects(
                    f"more than {self._max} redirects (the last to {following.url})",
                    request=response.request,
                    response=response,
                    history=history[:-1],
                )
            request = following
        response.history = history

    def _hop(self, request: Request, auth: Auth | None) -> Generator[Request, Response, Response]:
        """Send one hop: through the auth flow's requests, with cookies, until it ends."""
        steps = auth.auth_flow(request) if auth is not None else None
        current = next(steps) if steps is not None else request
        sent: list[Request] = []
        response: Response | None = None
        while True:
            if (
                response is not None
                and _one_shot(current)
                and any(current.body is s.body for s in sent)
            ):
                raise BodyNotReplayable(
                    f"auth asks to send the request again after {response.status}, but its "
                    f"body was a one-shot iterator or file",
                    request=current,
                    response=response,
                )
            response = yield self._with_cookies(current)
            sent.append(current)
            self._store_cookies(response)
            if steps is None:
                return response
            try:
                current = steps.send(response)
            except StopIteration:
                return response

    def _with_cookies(self, request: Request) -> Request:
        if not any_cookies(self._jars) or "cookie" in request.wire_headers():
            return request  # the caller's own Cookie header wins (dropped off-origin)
        value = cookie_header(self._jars, request.url)
        return request if value is None else with_header(request, "Cookie", value)

    def _store_cookies(self, response: Response) -> None:
        if not response.has_header("set-cookie"):
            return  # most responses: no header parsing, no cookiejar
        headers = response.headers
        url = response.request.url
        extract_cookies(self._jar, headers, url)
        own = Cookies()
        extract_cookies(own, headers, url)
        response._cookies = own


def _one_shot(request: Request) -> bool:
    return request.body is not None and not isinstance(request.body, bytes)
