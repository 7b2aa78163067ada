"""Turn measured runs into bench/RESULTS.md: medians, ratios to tether, targets.

Every number in the report comes from the runs passed in; nothing is typed in.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.registry import ROWS, ROWS_BY_KEY, SCENARIOS


@dataclass
class Summary:
    row: str
    ok_runs: int
    total_runs: int
    rps: float | None
    spread: str  # half the min-max range of req/s, as a percentage of the median
    cpu_us: float | None
    conns: str
    errors: list[str]
    notes: list[str]
    extra: dict[str, float]


BUSY = 0.25  # other processes' CPU use (in CPUs) above which a row is flagged


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summarize(row: str, runs: list[dict[str, Any]], mem: bool = False) -> Summary:
    ok = [r for r in runs if r.get("ok")]
    errors = sorted({str(r.get("error", "?")) for r in runs if not r.get("ok")})
    notes: set[str] = set()
    rps = cpu = None
    spread = ""
    conns = "n/a"
    extra: dict[str, float] = {}
    # A run that returned a wrong answer fails the row: no number is shown for it.
    if ok and not errors:
        rates = [r["requests"] / r["wall_s"] for r in ok if r["wall_s"] > 0]
        rps = _median(rates)
        if rps and len(rates) > 1:
            spread = f"±{50 * (max(rates) - min(rates)) / rps:.0f}%"
        cpu = _median([1e6 * r["cpu_s"] / r["requests"] for r in ok if r["requests"]])
        sc = sorted({int(r["server_connections"]) for r in ok})
        conns = str(sc[0]) if len(sc) == 1 else f"{sc[0]}-{sc[-1]}"
        for r in ok:
            cc = r.get("client_connections")
            # (memory runs use two clients in one process, so the counts differ there)
            if not mem and cc is not None and int(cc) != int(r["server_connections"]):
                notes.add(f"client reports {cc} connections, server saw {r['server_connections']}")
            if r.get("note"):
                notes.add(str(r["note"]))
            hv = (r.get("info") or {}).get("http_versions")
            if hv:
                notes.add(f"HTTP version: {hv}")
        foreign = _median([float(r.get("foreign_cpu", 0.0)) for r in ok])
        if foreign is not None and foreign > BUSY:
            notes.add(f"machine busy: other processes used {foreign:.2f} CPU (median)")
        for key in ("rss_per_conn", "traced_per_conn", "idle_connections"):
            vals = [float(r[key]) for r in ok if key in r]
            if vals:
                extra[key] = statistics.median(vals)
    return Summary(row, len(ok), len(runs), rps, spread, cpu, conns, errors, sorted(notes), extra)


def _fmt(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# (description, scenario, row, versus row, threshold, kind)
#   kind "rps":    met when rps(row) / rps(versus) >= threshold
#   kind "cpu":    met when cpu(row) / cpu(versus) <= threshold
#   kind "info":   ratio shown, no threshold
TARGETS: list[tuple[str, str, str, str, float | None, str]] = [
    (
        "tether Session sequential small GET >= 0.8x socket loop",
        "seq_small",
        "tether-session",
        "socket",
        0.8,
        "rps",
    ),
    (
        "tether Session sequential small GET >= 1.25x pycurl",
        "seq_small",
        "tether-session",
        "pycurl",
        1.25,
        "rps",
    ),
    (
        "tether Session sequential small GET >= 5x requests Session",
        "seq_small",
        "tether-session",
        "requests-session",
        5.0,
        "rps",
    ),
    (
        "TLS: tether Session sequential small GET >= 0.8x socket loop",
        "tls_seq",
        "tether-session",
        "socket",
        0.8,
        "rps",
    ),
    (
        "TLS: tether Session sequential small GET >= 1.25x pycurl",
        "tls_seq",
        "tether-session",
        "pycurl",
        1.25,
        "rps",
    ),
    (
        "TLS: tether Session sequential small GET >= 5x requests Session",
        "tls_seq",
        "tether-session",
        "requests-session",
        5.0,
        "rps",
    ),
    (
        "TLS: tether Session CPU per request <= 1.3x socket loop's",
        "tls_seq",
        "tether-session",
        "socket",
        1.3,
        "cpu",
    ),
    (
        "tether Session sequential 64 KiB GET >= 0.8x socket loop",
        "seq_large",
        "tether-session",
        "socket",
        0.8,
        "rps",
    ),
    (
        "tether Session CPU per request (sequential small) <= 1.3x socket loop's",
        "seq_small",
        "tether-session",
        "socket",
        1.3,
        "cpu",
    ),
    (
        "tether 16 threads on one Session >= aiohttp 16 tasks",
        "conc16",
        "tether-session",
        "aiohttp",
        1.0,
        "rps",
    ),
    ("one-shot tether.get() >= requests.get()", "cold", "tether-get", "requests-get", 1.0, "rps"),
    (
        "HTTP/2, 16 streams on one connection: hand-written h2 loop vs httpx AsyncClient "
        "http2 (reference)",
        "h2_16",
        "h2loop",
        "httpx-async-h2",
        None,
        "info",
    ),
    (
        "HTTP/2, 16 streams on one connection: hand-written h2 loop vs httpx Client http2 "
        "from 16 threads (reference)",
        "h2_16",
        "h2loop",
        "httpx-h2",
        None,
        "info",
    ),
]


def _versions_block(info: dict[str, Any]) -> list[str]:
    out = []
    for venv, vers in info.get("versions", {}).items():
        label = ".venv" if venv == "main" else f".venv-{venv}"
        if "error" in vers:
            out.append(f"  - `{label}`: could not read versions: {vers['error']}")
            continue
        loaded = {k: v for k, v in vers.items() if k.endswith(" loaded")}
        libs = ", ".join(
            f"{k} {v}"
            for k, v in vers.items()
            if not k.endswith(" loaded") and k not in ("python", "libcurl")
        )
        out.append(f"  - `{label}` (Python {vers.get('python', '?')}): {libs}")
        if "libcurl" in vers:
            out.append(f"    - pycurl's libcurl: {vers['libcurl']}")
        for k, v in loaded.items():
            out.append(f"    - {k}: `{v}`")
    return out


def render(info: dict[str, Any], results: dict[tuple[str, str], list[dict[str, Any]]]) -> str:
    lines: list[str] = []
    add = lines.append
    add("# tether benchmarks")
    add("")
    add(
        "Generated by `bench/run` (`bench/harness.py`); every number below was measured "
        "in this run. Regenerate, don't edit."
    )
    add("")
    add(f"- Date: {info['date']}{' (quick run)' if info.get('quick') else ''}")
    add(
        f"- Machine: {info['cpu_model']}, {info['nproc']} CPUs, {info['memory']}, "
        f"Linux {info['kernel']}"
    )
    add(
        f"- Pinning: nginx on CPU {info['server_cpu']} (1 worker), each client on CPU "
        f"{info['client_cpu']} (`taskset`)"
    )
    add(
        f"- Server: {info['nginx']}; static files, keepalive_requests 1000000, "
        "keepalive_timeout 300s, access_log off"
    )
    add(f"- C ceilings: {info['wrk']}; {info['h2load']}")
    add(f"- tether under test: {info.get('tether_commit', '?')}")
    add(
        f"- Python {info['python']}; {info['reps']} repetitions, medians shown; each run "
        f"bounded by N requests or {info['time_bound']} s, whichever first; "
        f"total {info.get('total_seconds', '?')} s"
    )
    foreign = sorted(float(r.get("foreign_cpu", 0.0)) for runs in results.values() for r in runs)
    if foreign:
        busy = sum(1 for f in foreign if f > BUSY)
        add(
            f"- Other processes on the machine during the runs (CPU not used by the client, "
            f"nginx or the harness): median {statistics.median(foreign):.2f} CPU, max "
            f"{foreign[-1]:.2f} CPU; {busy} of {len(foreign)} runs above {BUSY} CPU"
            + (" — numbers from a busy machine are noisy" if busy else "")
        )
    add("- Library versions:")
    lines.extend(_versions_block(info))
    add("")
    add(
        "Columns: req/s = median requests per second; spread = half the min-max range "
        "of req/s over the runs, relative to the median; xtether = req/s divided by the "
        "reference tether row's; CPU µs/req = client process CPU time (user+sys, all "
        "threads) in the measured loop divided by requests; conns = connections the server "
        "accepted during the whole client process (warm-up included), from nginx "
        "`stub_status`; runs = successful/total. A run that returns a wrong status or body "
        "fails its row."
    )
    add("")

    summaries: dict[tuple[str, str], Summary] = {
        key: summarize(key[1], runs, SCENARIOS[key[0]].mode == "mem")
        for key, runs in results.items()
    }
    row_order = {r.key: i for i, r in enumerate(ROWS)}
    for sc in SCENARIOS.values():
        keys = sorted((k for k in summaries if k[0] == sc.key), key=lambda k: row_order[k[1]])
        if not keys:
            continue
        add(f"## {sc.title}")
        add("")
        ref = summaries.get((sc.key, sc.reference))
        ref_label = (
            ROWS_BY_KEY[sc.reference].label_for(sc.key)
            if sc.reference in ROWS_BY_KEY
            else f"{sc.reference} (not in clients/registry.py yet)"
        )
        if sc.mode == "mem":
            add(
                f"{sc.concurrency} requests in flight at once to a rate-limited resource make "
                f"the pool open {sc.concurrency} connections; growth after they are idle in the "
                "pool, divided by the idle sockets the process holds. A first identical client "
                "is run and closed before the baseline, so imports and thread stacks are warm."
            )
            add("")
            add("| client | idle conns | RSS KiB/conn | tracemalloc KiB/conn | runs | notes |")
            add("|---|---:|---:|---:|---:|---|")
            for k in keys:
                s = summaries[k]
                label = ROWS_BY_KEY[s.row].label
                if s.errors:
                    add(
                        f"| {label} | FAILED: {'; '.join(s.errors)[:200]} | | | "
                        f"{s.ok_runs}/{s.total_runs} | |"
                    )
                    continue
                ex = s.extra
                rss = ex.get("rss_per_conn")
                tm = ex.get("traced_per_conn")
                add(
                    f"| {label} | {_fmt(ex.get('idle_connections'))} | "
                    f"{_fmt(rss / 1024 if rss is not None else None, 1)} | "
                    f"{_fmt(tm / 1024 if tm is not None else None, 2)} | "
                    f"{s.ok_runs}/{s.total_runs} | {'; '.join(s.notes)} |"
                )
            add("")
            continue
        add(
            f"Reference for xtether: {ref_label}"
            + ("" if ref and ref.rps else " (no measurement: ratios n/a)")
            + "."
        )
        add("")
        add("| client | req/s | spread | xtether | CPU µs/req | conns | runs | notes |")
        add("|---|---:|---:|---:|---:|---:|---:|---|")
        for k in keys:
            s = summaries[k]
            row = ROWS_BY_KEY[s.row]
            note = row.note_for(sc.key)
            notes = ([note] if note else []) + s.notes
            if s.errors:
                add(
                    f"| {row.label_for(sc.key)} | FAILED: {'; '.join(s.errors)[:200]} | | | | | "
                    f"{s.ok_runs}/{s.total_runs} | {'; '.join(notes)} |"
                )
                continue
            ratio = _ratio(s.rps, ref.rps if ref else None)
            add(
                f"| {row.label_for(sc.key)} | {_fmt(s.rps)} | {s.spread} | {_fmt(ratio, 2)} | "
                f"{_fmt(s.cpu_us, 1)} | {s.conns} | {s.ok_runs}/{s.total_runs} | "
                f"{'; '.join(notes)} |"
            )
        add("")

    add("## Targets")
    add("")
    add("| target | measured | met? |")
    add("|---|---:|---|")
    for desc, sc_key, row, vs, threshold, kind in TARGETS:
        a = summaries.get((sc_key, row))
        b = summaries.get((sc_key, vs))
        if a is None or b is None:
            missing = row if a is None else vs
            add(f"| {desc} | n/a | not measured ({missing} not run) |")
            continue
        if a.errors or b.errors:
            bad = a if a.errors else b
            add(
                f"| {desc} | n/a | not measured: {ROWS_BY_KEY[bad.row].label} failed "
                f"({'; '.join(bad.errors)[:120]}) |"
            )
            continue
        if kind == "cpu":
            r = _ratio(a.cpu_us, b.cpu_us)
            verdict = (
                "n/a"
                if r is None or threshold is None
                else ("met" if r <= threshold else "not met")
            )
        else:
            r = _ratio(a.rps, b.rps)
            verdict = (
                "reference only"
                if threshold is None
                else ("n/a" if r is None else ("met" if r >= threshold else "not met"))
            )
        add(f"| {desc} | {_fmt(r, 2)}x | {verdict} |")
    add("")
    return "\n".join(lines)


def write_report(
    info: dict[str, Any], results: dict[tuple[str, str], list[dict[str, Any]]], path: Path
) -> str:
    text = render(info, results)
    path.write_text(text)
    return text


if __name__ == "__main__":
    # Re-render RESULTS.md from the raw runs of the last bench/run (.last-run.json): the
    # numbers stay the measured ones; only the presentation (tables, targets) is redone.
    import json
    import sys

    here = Path(__file__).parent
    raw = json.loads((here / ".last-run.json").read_text())
    runs = {(r["scenario"], r["row"]): r["runs"] for r in raw["results"]}
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "RESULTS.md"
    print(write_report(raw["info"], runs, out))
