"""Which clients run in which scenarios.

Adding a client (say ``tether.AsyncSession`` or tether over HTTP/2) is one factory
function in a ``clients/c_*.py`` module plus one ``Row`` below.  This module is
imported by both the harness and the client subprocesses, so it must import no
client library.

Factory kinds (see ``clients/drivers.py``):

* ``sync``:   ``factory(ctx) -> SyncClient`` whose ``get()`` returns ``(status, body)``.
  Sequential scenarios call it in a loop; ``conc16`` calls it from 16 threads (one
  shared client, or one client per thread when ``per_thread`` is set).
* ``async``:  ``async factory(ctx) -> AsyncClient``; ``conc16`` runs 16 tasks.
* ``custom``: ``factory(ctx, params) -> dict`` runs its own bounded loop (the
  hand-written HTTP/2 client).
* ``external``: a C load generator (wrk, h2load) run by the harness itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    listener: str  # "plain" | "tls" | "h2" (nginx listener)
    body: str  # "small" | "large" | "slow"
    concurrency: int
    mode: str  # "seq" | "conc" | "cold" | "h2" | "mem"
    reference: str  # row key every ratio in this table is taken against
    n: int  # request bound (full run); the time bound comes from the harness
    n_quick: int


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario(
            "seq_small",
            "Sequential GET, 13-byte body, plain HTTP/1.1, one connection",
            "plain",
            "small",
            1,
            "seq",
            "tether-session",
            5000,
            1500,
        ),
        Scenario(
            "seq_large",
            "Sequential GET, 64 KiB body, plain HTTP/1.1, one connection",
            "plain",
            "large",
            1,
            "seq",
            "tether-session",
            3000,
            1000,
        ),
        Scenario(
            "tls_seq",
            "Sequential GET, 13-byte body, HTTP/1.1 over TLS, one connection",
            "tls",
            "small",
            1,
            "seq",
            "tether-session",
            5000,
            1500,
        ),
        Scenario(
            "conc16",
            "16 concurrent (threads or tasks), 13-byte body, plain HTTP/1.1",
            "plain",
            "small",
            16,
            "conc",
            "tether-session",
            10000,
            3000,
        ),
        Scenario(
            "h2_seq",
            "HTTP/2 over TLS, sequential (one stream at a time), one connection, 13-byte body",
            "h2",
            "small",
            1,
            "seq",
            "tether-h2",
            5000,
            1500,
        ),
        Scenario(
            "h2_16",
            "HTTP/2 over TLS, 16 concurrent streams on one connection, 13-byte body",
            "h2",
            "small",
            16,
            "h2",
            "tether-h2",
            10000,
            3000,
        ),
        Scenario(
            "cold",
            "Cold: a new connection per request, 13-byte body, plain HTTP/1.1",
            "plain",
            "small",
            1,
            "cold",
            "tether-get",
            2000,
            400,
        ),
        Scenario(
            "idle_mem",
            "Memory per idle pooled connection, plain HTTP/1.1",
            "plain",
            "slow",
            100,
            "mem",
            "tether-session",
            100,
            100,
        ),
        Scenario(
            "idle_mem_tls",
            "Memory per idle pooled connection, HTTP/1.1 over TLS",
            "tls",
            "slow",
            100,
            "mem",
            "tether-session",
            100,
            100,
        ),
    )
}

SEQ = ("seq_small", "seq_large", "tls_seq")
H2 = ("h2_seq", "h2_16")
MEM = ("idle_mem", "idle_mem_tls")


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    kind: str  # "sync" | "async" | "custom" | "external"
    impl: dict[str, str] = field(default_factory=dict)  # scenario -> "module:function"
    venv: str = "main"  # "main" (.venv) or "niquests" (.venv-niquests)
    per_thread: bool = False  # conc16: one client per thread instead of one shared
    labels: dict[str, str] = field(default_factory=dict)  # scenario -> label override
    notes: dict[str, str] = field(default_factory=dict)  # scenario -> note ("*": all)

    @property
    def scenarios(self) -> tuple[str, ...]:
        return tuple(self.impl)

    def label_for(self, scenario: str) -> str:
        return self.labels.get(scenario, self.label)

    def note_for(self, scenario: str) -> str:
        return "; ".join(n for n in (self.notes.get("*"), self.notes.get(scenario)) if n)


def _all(target: str, scenarios: tuple[str, ...]) -> dict[str, str]:
    return dict.fromkeys(scenarios, target)


ROWS: list[Row] = [
    # --- tether -------------------------------------------------------------
    Row(
        "tether-session",
        "tether Session",
        "sync",
        _all("c_tether:session", (*SEQ, "conc16", *MEM)),
        notes={"conc16": "16 threads, Session(pool_maxsize=16)"},
    ),
    Row(
        "tether-pool",
        "tether ConnectionPool",
        "sync",
        _all("c_tether:pool", (*SEQ, "conc16")),
        notes={"conc16": "16 threads, maxsize=16"},
    ),
    Row("tether-get", "tether.get() one-shot", "sync", {"cold": "c_tether:oneshot"}),
    Row(
        "tether-h2",
        "tether Session(http2=True)",
        "sync",
        _all("c_tether:session_h2", H2),
        labels={"h2_16": "tether Session(http2=True) (16 threads)"},
        notes={"*": "fails unless the response says HTTP/2", "h2_16": "16 threads, one Session"},
    ),
    Row(
        "tether-async",
        "tether AsyncSession",
        "async",
        _all("c_tether:async_session", (*SEQ, "conc16")),
        notes={"conc16": "16 tasks, AsyncSession(pool_maxsize=16)"},
    ),
    Row(
        "tether-async-h2",
        "tether AsyncSession(http2=True)",
        "async",
        _all("c_tether:async_session_h2", H2),
        labels={"h2_16": "tether AsyncSession(http2=True) (16 tasks)"},
        notes={"*": "fails unless the response says HTTP/2", "h2_16": "16 tasks, one session"},
    ),
    # --- floors and ceilings ------------------------------------------------
    Row(
        "socket",
        "socket loop (pure-Python floor)",
        "sync",
        {**_all("c_socket:persistent", (*SEQ, "conc16")), "cold": "c_socket:cold"},
        per_thread=True,
        labels={"cold": "socket loop, new socket per request"},
        notes={"conc16": "16 threads, one socket each"},
    ),
    Row(
        "h2loop",
        "HTTP/2 frame loop (pure-Python floor)",
        "custom",
        _all("c_h2loop:run", H2),
        notes={
            "*": "raw frames, request HPACK-encoded once, jh2 decoder, memory-BIO TLS",
            "h2_seq": "1 stream at a time",
            "h2_16": "16 streams in flight, refilled",
        },
    ),
    Row(
        "wrk",
        "wrk (C ceiling)",
        "external",
        _all("wrk", (*SEQ, "conc16", "cold")),
        labels={"conc16": "wrk -c16 (C ceiling)"},
        notes={
            "*": "time-bounded; CPU includes process start-up; "
            "one extra connection is wrk's start-up probe",
            "cold": "Connection: close on every request",
        },
    ),
    Row(
        "h2load",
        "h2load -c1 (C ceiling)",
        "external",
        _all("h2load", H2),
        labels={"h2_seq": "h2load -c1 -m1 (C ceiling)", "h2_16": "h2load -c1 -m16 (C ceiling)"},
        notes={"*": "CPU includes process start-up"},
    ),
    # --- peers ----------------------------------------------------------------
    Row(
        "pycurl",
        "pycurl (reused handle)",
        "sync",
        {**_all("c_pycurl:reused", (*SEQ, "conc16")), "cold": "c_pycurl:new_handle"},
        per_thread=True,
        labels={"cold": "pycurl, new handle per request"},
        notes={"conc16": "16 threads, one handle each"},
    ),
    Row(
        "pycurl-h2",
        "pycurl HTTP/2 (reused handle)",
        "sync",
        {"h2_seq": "c_pycurl:reused_h2"},
    ),
    Row(
        "pycurl-multi-h2",
        "pycurl CurlMulti HTTP/2, 16 handles multiplexed",
        "custom",
        {"h2_16": "c_pycurl:multi_h2"},
        notes={"h2_16": "PIPE_MULTIPLEX + PIPEWAIT: streams share one connection; refilled"},
    ),
    Row(
        "curl-cffi",
        "curl_cffi Session (HTTP/1.1)",
        "sync",
        _all("c_curl_cffi:session", (*SEQ, "conc16")),
        notes={
            "*": "no impersonation",
            "conc16": "16 threads, one Session (a curl handle, so a connection, per thread)",
        },
    ),
    Row(
        "curl-cffi-h2",
        "curl_cffi Session http_version=v2",
        "sync",
        _all("c_curl_cffi:session_h2", H2),
        labels={"h2_16": "curl_cffi Session HTTP/2 (16 threads)"},
        notes={
            "*": "no impersonation",
            "h2_16": "one Session; curl_cffi gives each thread its own handle and connection",
        },
    ),
    Row(
        "curl-cffi-async-h2",
        "curl_cffi AsyncSession HTTP/2 (16 tasks)",
        "async",
        {"h2_16": "c_curl_cffi:async_session_h2"},
        notes={"*": "no impersonation; max_clients=16 (one CurlMulti)"},
    ),
    Row(
        "urllib3",
        "urllib3 HTTPConnectionPool",
        "sync",
        _all("c_urllib3:pool", (*SEQ, "conc16", *MEM)),
        notes={"conc16": "16 threads, maxsize=16, block=True"},
    ),
    Row(
        "httpclient",
        "http.client (reused connection)",
        "sync",
        {**_all("c_httpclient:reused", (*SEQ, "conc16")), "cold": "c_httpclient:new_conn"},
        per_thread=True,
        labels={"cold": "http.client, new connection per request"},
        notes={"conc16": "16 threads, one connection each"},
    ),
    Row(
        "requests-session",
        "requests Session",
        "sync",
        _all("c_requests:session", (*SEQ, "conc16", *MEM)),
        notes={"conc16": "16 threads, pool_maxsize=16"},
    ),
    Row("requests-get", "requests.get() (no Session)", "sync", {"cold": "c_requests:oneshot"}),
    Row(
        "httpx",
        "httpx Client (HTTP/1.1)",
        "sync",
        {**_all("c_httpx:client", (*SEQ, "conc16", *MEM)), "cold": "c_httpx:oneshot"},
        labels={"cold": "httpx.get() one-shot"},
        notes={"conc16": "16 threads, one Client", "cold": "builds an SSL context per call"},
    ),
    Row(
        "httpx-h2",
        "httpx Client http2=True",
        "sync",
        _all("c_httpx:client_h2", H2),
        labels={"h2_16": "httpx Client http2=True (16 threads)"},
        notes={"h2_16": "one Client shared by 16 threads"},
    ),
    Row(
        "httpx-async-h2",
        "httpx AsyncClient http2=True (16 tasks)",
        "async",
        {"h2_16": "c_httpx:async_client_h2"},
    ),
    Row(
        "niquests",
        "niquests Session",
        "sync",
        {**_all("c_niquests:session", (*SEQ, "conc16")), "cold": "c_niquests:oneshot"},
        venv="niquests",
        labels={"cold": "niquests.get() one-shot"},
        notes={"conc16": "16 threads, pool_maxsize=16"},
    ),
    Row(
        "niquests-h2-session",
        "niquests Session, HTTP/2 only",
        "sync",
        {"h2_seq": "c_niquests:session_h2"},
        venv="niquests",
        notes={"*": "disable_http1=True, not multiplexed"},
    ),
    Row(
        "niquests-h2",
        "niquests Session multiplexed=True (batches of 16)",
        "custom",
        {"h2_16": "c_niquests:multiplexed_h2"},
        venv="niquests",
    ),
    Row(
        "aiohttp",
        "aiohttp ClientSession",
        "async",
        {**_all("c_aiohttp:session", (*SEQ, "conc16")), "cold": "c_aiohttp:force_close"},
        labels={
            "conc16": "aiohttp ClientSession (16 tasks)",
            "cold": "aiohttp, force_close connector",
        },
    ),
]

ROWS_BY_KEY: dict[str, Row] = {r.key: r for r in ROWS}
