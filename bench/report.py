#!/usr/bin/env python3
"""Turns bench/run.sh's results.txt into the side-by-side table and the target checks.

    report.py HEADER_FILE RESULTS_FILE

results.txt has one line per server, round and scenario: "server=S round=R scenario=X k=v ...".
Every number shown is the median over all windows of this run (rounds, and sessions within a
round); the spread (min..max) of the numbers the targets depend on is printed below the table.
"""
import statistics
import sys

ORDER = ["tcpechod", "tcpechod-ref", "tcpechod-w2", "blocking", "epoll", "asyncio", "socat"]
DAEMONS = ["tcpechod", "tcpechod-w2"]

# (label, scenario, key or function, format)
def syscalls_per_msg(r):
    if "strace_window_s" in r:  # strace fallback: its own window, at the measured rate
        return float(r["syscalls"]) / (float(r["msgs_s"]) * float(r["strace_window_s"]))
    return float(r["syscalls"]) / float(r["msgs"])  # perf: counted over loadgen's exact window


def epoll_ctl_per_s(r):
    return float(r["epoll_ctl"]) / float(r.get("strace_window_s", r["secs"]))


def others_cpus(r):
    return max(0.0, float(r["other_cpu_s"])) / float(r["secs"])


ROWS = [
    ("bulk 1 conn: MiB/s (full duplex)", "bulk", "mib_s", "{:.0f}"),
    ("bulk: server CPU s per GiB", "bulk", "server_cpu_s_per_gib", "{:.3f}"),
    ("pp 1 conn: msgs/s", "pp1", "msgs_s", "{:.0f}"),
    ("pp 1 conn: p50 µs", "pp1", "p50_us", "{:.1f}"),
    ("pp 1 conn: p99 µs", "pp1", "p99_us", "{:.1f}"),
    ("pp 1 conn: server CPU µs/msg", "pp1", "server_cpu_us_per_msg", "{:.2f}"),
    ("pp 100 conns: msgs/s", "pp100", "msgs_s", "{:.0f}"),
    ("pp 100 conns: p50 µs", "pp100", "p50_us", "{:.0f}"),
    ("pp 100 conns: p99 µs", "pp100", "p99_us", "{:.0f}"),
    ("pp 100 conns: server CPU µs/msg", "pp100", "server_cpu_us_per_msg", "{:.2f}"),
    ("pp 50 conns: syscalls/msg (perf)", "sys50", syscalls_per_msg, "{:.2f}"),
    ("pp 50 conns: epoll_ctl/s steady", "sys50", epoll_ctl_per_s, "{:.1f}"),
    ("pp 50 conns: msgs/s under perf", "sys50", "msgs_s", "{:.0f}"),
    ("pp 1 conn: syscalls/msg (perf)", "sys1", syscalls_per_msg, "{:.2f}"),
    ("idle: user-space B/conn (anon)", "idle", "anon_bytes_per_conn", "{:.0f}"),
    ("idle: RSS B/conn", "idle", "rss_bytes_per_conn", "{:.0f}"),
    ("noise: other procs' CPUs, bulk", "bulk", others_cpus, "{:.2f}"),
    ("noise: other procs' CPUs, pp100", "pp100", others_cpus, "{:.2f}"),
]


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            kv = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
            if "server" in kv:
                rows.append(kv)
    return rows


def values(rows, server, scenario, key):
    out = []
    for r in rows:
        if r["server"] != server or r["scenario"] != scenario or "failed" in r or "skipped" in r:
            continue
        try:
            out.append(key(r) if callable(key) else float(r[key]))
        except (KeyError, ValueError, ZeroDivisionError):
            pass
    return out


def paired_ratios(rows, a, b, scenario, key):
    """a ÷ b for every window both ran in (same round and repetition: minutes apart at most,
    seconds for the interleaved scenarios), so slow and fast phases of the machine cancel."""
    def by_window(server):
        out = {}
        for r in rows:
            if r["server"] != server or r["scenario"] != scenario or "failed" in r or "skipped" in r:
                continue
            try:
                out[(r["round"], r.get("rep", "0"))] = key(r) if callable(key) else float(r[key])
            except (KeyError, ValueError, ZeroDivisionError):
                pass
        return out
    va, vb = by_window(a), by_window(b)
    return [va[w] / vb[w] for w in sorted(va) if w in vb and vb[w]]


def median(rows, server, scenario, key):
    v = values(rows, server, scenario, key)
    return statistics.median(v) if v else None


def main():
    header = open(sys.argv[1]).read().rstrip("\n")
    rows = parse(sys.argv[2])
    present = {r["server"] for r in rows}
    servers = [s for s in ORDER if s in present] + sorted(present - set(ORDER))
    daemon = next((d for d in DAEMONS if d in present), None)

    cols = list(servers)
    ratio_cols = []
    if daemon:
        for peer in ("tcpechod-ref", "blocking", "epoll"):
            if peer in present:
                ratio_cols.append(peer)
    label_w = max(len(r[0]) for r in ROWS)
    col_w = [max(9, len(c)) for c in cols]
    ratio_names = [f"÷{p}" for p in ratio_cols]

    print(header)
    print()
    head = f"{'metric (median of windows)':<{label_w}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cols, col_w))
    if ratio_cols:
        head += "  |  " + "  ".join(f"{n:>9}" for n in ratio_names)
    print(head)
    print("-" * len(head))
    for label, sc, key, fmt in ROWS:
        cells = []
        for c, w in zip(cols, col_w):
            m = median(rows, c, sc, key)
            if m is None:
                skipped = any(r["server"] == c and r["scenario"] == sc and "skipped" in r for r in rows)
                failed = any(r["server"] == c and r["scenario"] == sc and "failed" in r for r in rows)
                cells.append(f"{'n/a' if skipped else 'FAIL' if failed else '-':>{w}}")
            else:
                cells.append(f"{fmt.format(m):>{w}}")
        line = f"{label:<{label_w}}  " + "  ".join(cells)
        if ratio_cols:
            rc = []
            mine = median(rows, daemon, sc, key)
            for p in ratio_cols:
                theirs = median(rows, p, sc, key)
                rc.append(f"{mine / theirs:>9.2f}" if mine is not None and theirs else f"{'-':>9}")
            line += "  |  " + "  ".join(rc)
        print(line)
    if ratio_cols:
        print(f"(÷peer columns: {daemon} divided by that peer; server CPU includes all threads and,"
              " for socat, its per-connection children.")
        print(" A closed loop on 2 CPUs flips between a batching regime and a wake-up-per-message regime"
              " whatever the server: compare CPU/msg with the spread below, see docs/performance.md)")

    # Target checks, each against the peers of this run.
    print()
    print("targets (each against the peers of this same run; verdict on the median of the per-window ratios):")
    checks = []
    for d in [x for x in DAEMONS if x in present]:
        def m(server, sc, key):
            return median(rows, server, sc, key)

        def check(name, ok, detail):
            checks.append((d, name, ok, detail))

        def paired_check(name, sc, key, peer, unit, fmt, higher_is_better=False, aim=None):
            a, b = m(d, sc, key), m(peer, sc, key)
            ratios = paired_ratios(rows, d, peer, sc, key)
            if a is None or not b or not ratios:
                return
            q = statistics.median(ratios)
            ok = q >= 1.0 if higher_is_better else q <= 1.0
            detail = (f"{fmt.format(a)} vs {fmt.format(b)}{unit}; per window {q:.2f}x "
                      f"(median of {len(ratios)}, {min(ratios):.2f}..{max(ratios):.2f})")
            if aim is not None:
                detail += f"; aim {aim}x {'met' if q <= aim else 'not met'}"
            check(name, ok, detail)

        paired_check("raw throughput >= 1.0x blocking", "bulk", "mib_s", "blocking", " MiB/s", "{:.0f}",
                     higher_is_better=True)
        paired_check("server CPU per GiB <= blocking", "bulk", "server_cpu_s_per_gib", "blocking", " s", "{:.3f}")
        paired_check("CPU per 64 B msg @100 <= epoll", "pp100", "server_cpu_us_per_msg", "epoll", " µs", "{:.2f}",
                     aim=0.9)
        paired_check("syscalls per msg @50 <= epoll", "sys50", syscalls_per_msg, "epoll", "", "{:.2f}")
        v = values(rows, d, "sys50", "epoll_ctl")
        if v:
            check("no epoll_ctl in steady state", max(v) == 0, f"epoll_ctl calls per window: {[int(x) for x in v]}")
        a = m(d, "idle", "anon_bytes_per_conn")
        if a is not None:
            check("<= 128 B user space per idle conn", a <= 128, f"{a:.0f} B (anonymous memory growth / conns)")
    for d, name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {d:<16} {name:<34} {detail}")

    print()
    print("spread over windows (min..max) of the numbers the targets use:")
    spread_rows = [("bulk MiB/s", "bulk", "mib_s", "{:.0f}"), ("bulk CPU s/GiB", "bulk", "server_cpu_s_per_gib", "{:.3f}"),
                   ("pp100 CPU µs/msg", "pp100", "server_cpu_us_per_msg", "{:.2f}"),
                   ("sys50 syscalls/msg", "sys50", syscalls_per_msg, "{:.2f}")]
    for label, sc, key, fmt in spread_rows:
        parts = []
        for c in cols:
            v = values(rows, c, sc, key)
            if v:
                parts.append(f"{c} {fmt.format(min(v))}..{fmt.format(max(v))}")
        print(f"  {label:<20} " + "; ".join(parts))
    noisy = [v for r in rows if r.get("scenario") in ("bulk", "pp1", "pp100") and "other_cpu_s" in r
             for v in [others_cpus(r)] if v > 0.2]
    if noisy:
        print()
        print(f"WARNING: in {len(noisy)} measurement windows other processes used more than 0.2 CPU"
              f" (up to {max(noisy):.2f}); those numbers are skewed — rerun on a quiet machine.")
    failed = [r for r in rows if "failed" in r]
    if failed:
        print()
        print("failed runs:")
        for r in failed:
            print(f"  {r['server']} round {r['round']} {r['scenario']}: {r['failed']}")


if __name__ == "__main__":
    main()
