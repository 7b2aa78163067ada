"""Turn measured runs into bench/RESULTS.md: medians, ratios to tether, targets.

Every number in the report comes from the runs passed in; nothing is typed in.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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


class Target(NamedTuple):
    """``num`` / ``den`` are (scenario, row) pairs, so a target may span scenarios.

    kind "rps":  met when req/s(num) / req/s(den) >= threshold
    kind "cpu":  met when CPU/req(num) / CPU/req(den) <= threshold
    threshold None: the ratio is shown for reference, nothing is judged
    """

    description: str
    num: tuple[str, str]
    den: tuple[str, str]
    threshold: float | None
    kind: str = "rps"


def _same(scenario: str, row: str, versus: str) -> tuple[tuple[str, str], tuple[str, str]]:
    return (scenario, row), (scenario, versus)


TARGETS: list[Target] = [
    Target(
        "tether Session sequential small GET >= 0.8x socket loop",
        *_same("seq_small", "tether-session", "socket"),
        0.8,
    ),
    Target(
        "tether Session sequential small GET >= 1.25x pycurl",
        *_same("seq_small", "tether-session", "pycurl"),
        1.25,
    ),
    Target(
        "tether Session sequential small GET >= 5x requests Session",
        *_same("seq_small", "tether-session", "requests-session"),
        5.0,
    ),
    Target(
        "TLS: tether Session sequential small GET >= 0.8x socket loop",
        *_same("tls_seq", "tether-session", "socket"),
        0.8,
    ),
    Target(
        "TLS: tether Session sequential small GET >= 1.25x pycurl",
        *_same("tls_seq", "tether-session", "pycurl"),
        1.25,
    ),
    Target(
        "TLS: tether Session sequential small GET >= 5x requests Session",
        *_same("tls_seq", "tether-session", "requests-session"),
        5.0,
    ),
    Target(
        "TLS: tether Session CPU per request <= 1.3x socket loop's",
        *_same("tls_seq", "tether-session", "socket"),
        1.3,
        "cpu",
    ),
    Target(
        "tether Session sequential 64 KiB GET >= 0.8x socket loop",
        *_same("seq_large", "tether-session", "socket"),
        0.8,
    ),
    Target(
        "tether Session CPU per request (sequential small) <= 1.3x socket loop's",
        *_same("seq_small", "tether-session", "socket"),
        1.3,
        "cpu",
    ),
    Target(
        "tether 16 threads on one Session >= aiohttp 16 tasks",
        *_same("conc16", "tether-session", "aiohttp"),
        1.0,
    ),
    Target(
        "one-shot tether.get() >= requests.get()",
        *_same("cold", "tether-get", "requests-get"),
        1.0,
    ),
    Target(
        "HTTP/2: tether 16 threads on one connection >= 5x httpx Client http2 (16 threads)",
        *_same("h2_16", "tether-h2", "httpx-h2"),
        5.0,
    ),
    Target(
        "HTTP/2: tether 16 threads on one connection >= 5x httpx AsyncClient http2 (16 tasks)",
        *_same("h2_16", "tether-h2", "httpx-async-h2"),
        5.0,
    ),
    Target(
        "HTTP/2: tether 16 threads on one connection >= 0.5x the HTTP/2 frame loop",
        *_same("h2_16", "tether-h2", "h2loop"),
        0.5,
    ),
    Target(
        "HTTP/2: tether sequential (h2_seq) >= 0.8x tether HTTP/1.1 over TLS sequential (tls_seq)",
        ("h2_seq", "tether-h2"),
        ("tls_seq", "tether-session"),
        0.8,
    ),
    Target(
        "HTTP/2 frame loop, 16 streams, vs h2load -m16 (reference)",
        *_same("h2_16", "h2loop", "h2load"),
        None,
    ),
    Target(
        "HTTP/2 frame loop, sequential, vs the socket loop over HTTP/1.1 TLS (reference)",
        ("h2_seq", "h2loop"),
        ("tls_seq", "socket"),
        None,
    ),
]


def _judge(t: Target, a: Summary, b: Summary) -> tuple[str, str]:
    """(measured, verdict) cells of one target row."""
    if t.kind == "cpu":
        x, y, unit, digits = a.cpu_us, b.cpu_us, "µs/req", 1
    else:
        x, y, unit, digits = a.rps, b.rps, "req/s", 0
    r = _ratio(x, y)
    measured = f"{_fmt(r, 2)}x ({_fmt(x, digits)} / {_fmt(y, digits)} {unit})"
    if t.threshold is None:
        return measured, "reference only"
    if r is None:
        return measured, "n/a"
    met = r <= t.threshold if t.kind == "cpu" else r >= t.threshold
    return measured, "met" if met else "not met"


def _targets_block(summaries: dict[tuple[str, str], Summary]) -> list[str]:
    lines = [
        "## Targets",
        "",
        "Ratios from this run: numerator row / denominator row (scenario in brackets).",
        "",
        "| target | numerator | denominator | measured | met? |",
        "|---|---|---|---:|---|",
    ]
    for t in TARGETS:
        cells = []
        for sc, row in (t.num, t.den):
            label = ROWS_BY_KEY[row].label_for(sc) if row in ROWS_BY_KEY else row
            cells.append(f"{label} [{sc}]")
        a, b = summaries.get(t.num), summaries.get(t.den)
        head = f"| {t.description} | {cells[0]} | {cells[1]} |"
        if a is None or b is None:
            missing = t.num if a is None else t.den
            lines.append(f"{head} n/a | not measured ({missing[1]} not run in {missing[0]}) |")
            continue
        if a.errors or b.errors:
            bad = a if a.errors else b
            lines.append(
                f"{head} n/a | not measured: {ROWS_BY_KEY[bad.row].label} failed "
                f"({'; '.join(bad.errors)[:160]}) |"
            )
            continue
        measured, verdict = _judge(t, a, b)
        lines.append(f"{head} {measured} | {verdict} |")
    lines.append("")
    return lines


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


def summarize_all(
    results: dict[tuple[str, str], list[dict[str, Any]]],
) -> dict[tuple[str, str], Summary]:
    return {
        key: summarize(key[1], runs, SCENARIOS[key[0]].mode == "mem")
        for key, runs in results.items()
    }


# bar colours by kind of row in the chart
COLOURS = {"tether": "#d62728", "floor": "#7f7f7f", "peer": "#1f77b4"}
FLOORS = ("socket", "h2loop")


def write_chart(summaries: dict[tuple[str, str], Summary], path: Path) -> str:
    """Horizontal bars of req/s, one panel per scenario: tether, the peers and the
    pure-Python floors (the C ceilings, wrk and h2load, are left out: they would set
    every axis).  Returns the Markdown line for RESULTS.md (a link, or why not)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # the report must render without it
        return f"Chart skipped: matplotlib not importable ({type(e).__name__}: {e})."
    row_order = {r.key: i for i, r in enumerate(ROWS)}
    panels = []
    for sc in SCENARIOS.values():
        keys = sorted(
            (
                k
                for k in summaries
                if k[0] == sc.key and sc.mode != "mem" and ROWS_BY_KEY[k[1]].kind != "external"
            ),
            key=lambda k: row_order[k[1]],
        )
        if keys:
            panels.append((sc, [summaries[k] for k in keys]))
    if not panels:
        return "Chart skipped: no request-rate scenario was run."
    heights = [0.8 + 0.32 * len(rows) for _, rows in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(10, sum(heights)), gridspec_kw={"height_ratios": heights}
    )
    axes_list = list(axes) if len(panels) > 1 else [axes]
    for ax, (sc, rows) in zip(axes_list, panels, strict=True):
        labels = [ROWS_BY_KEY[s.row].label_for(sc.key) for s in rows]
        values = [0.0 if s.errors or s.rps is None else s.rps for s in rows]
        colours = [
            COLOURS["tether"]
            if s.row.startswith("tether")
            else COLOURS["floor" if s.row in FLOORS else "peer"]
            for s in rows
        ]
        ys = range(len(rows))
        ax.barh(list(ys), values, color=colours)
        top = max(values) or 1.0
        for y, s, v in zip(ys, rows, values, strict=True):
            text = f"FAILED: {s.errors[0][:60]}" if s.errors else f"{v:,.0f}"
            ax.text(v + top * 0.01, y, text, va="center", fontsize=7)
        ax.set_yticks(list(ys), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.15)
        ax.set_title(sc.title, fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    axes_list[-1].set_xlabel("requests per second (median; red: tether, grey: pure-Python floors)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return (
        f"![req/s per scenario: tether, peers and floors]({path.name}) "
        f"(`{path.name}`, req/s from this run; C ceilings left out)"
    )


def render(
    info: dict[str, Any],
    results: dict[tuple[str, str], list[dict[str, Any]]],
    chart: str | None = None,
) -> str:
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

    summaries = summarize_all(results)
    if chart:
        add(chart)
        add("")
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

    lines.extend(_targets_block(summaries))
    return "\n".join(lines)


def write_report(
    info: dict[str, Any], results: dict[tuple[str, str], list[dict[str, Any]]], path: Path
) -> str:
    chart = write_chart(summarize_all(results), path.parent / "results.png")
    text = render(info, results, chart)
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
