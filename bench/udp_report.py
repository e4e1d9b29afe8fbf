#!/usr/bin/env python3
"""Turns bench/udp_run.sh's results.txt into the side-by-side table and the target check.

    udp_report.py HEADER_FILE RESULTS_FILE

results.txt has one line per server, round and scenario: "server=S round=R scenario=X k=v ..."
(scenarios f1 and f100; sys-f1 and sys-f100 are the same under perf stat, with sc_NAME=count
for each counted syscall). Every number in the table is the median over the rounds; the
ratio columns are medians of per-round ratios (tcpechod ÷ minimal of the same round: the
windows were seconds apart, so the machine's slow and fast spells cancel), with their range.
"""
import statistics
import sys

ORDER = ["tcpechod", "tcpechod-rl", "tcpechod-w1", "minimal"]
PEER = "minimal"
TARGET = 1.2  # the target: datagrams/s at 100 flows >= 1.2x the minimal loop
NOISY = 0.2  # other processes' CPUs in a window above which it is flagged


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            kv = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
            if "server" in kv:
                rows.append(kv)
    return rows


def fnum(r, key):
    return float(r[key])


def others_cpus(r):
    return max(0.0, float(r["other_cpu_s"])) / float(r["secs"])


def per_dgram(name):
    return lambda r: float(r["sc_" + name]) / float(r["dgrams"])


def calls(r, names):
    return sum(float(r.get("sc_" + n, 0)) for n in names)


RECV = ["recvmmsg", "recvfrom", "recvmsg", "read"]
SEND = ["sendmmsg", "sendto", "sendmsg", "write"]
WAIT = ["epoll_wait", "epoll_pwait", "epoll_pwait2"]


def recv_batch(r):  # datagrams per receive call, calls that found nothing included
    return float(r["dgrams"]) / calls(r, RECV)


def recvmmsg_ok_batch(r):  # datagrams per recvmmsg that returned some
    return float(r["dgrams"]) / float(r["sc_recvmmsg_ok"]) if float(r.get("sc_recvmmsg_ok", 0)) else None


def recvmmsg_empty_share(r):
    n = float(r.get("sc_recvmmsg", 0))
    # max(0, ...): a call that entered just before the window may return inside it
    return max(0.0, n - float(r.get("sc_recvmmsg_ok", 0))) / n if n else None


def send_batch(r):
    return float(r["dgrams"]) / calls(r, SEND)


def wait_per_dgram(r):
    return calls(r, WAIT) / float(r["dgrams"])


# (label, scenario, key, format, ratio?)
ROWS = [
    ("1 flow: datagrams/s", "f1", "dgrams_s", "{:.0f}", True),
    ("1 flow: server CPU µs/datagram", "f1", "server_cpu_us_per_dgram", "{:.2f}", True),
    ("1 flow:   of which user", "f1", "server_user_us_per_dgram", "{:.2f}", False),
    ("1 flow:   of which kernel", "f1", "server_sys_us_per_dgram", "{:.2f}", False),
    ("1 flow: round trip p50 µs", "f1", "p50_us", "{:.1f}", False),
    ("1 flow: round trip p99 µs", "f1", "p99_us", "{:.1f}", False),
    ("1 flow: client CPU µs/datagram", "f1", "client_cpu_us_per_dgram", "{:.2f}", False),
    ("1 flow: lost (sum of rounds)", "f1", "lost", "SUM", False),
    ("100 flows: datagrams/s", "f100", "dgrams_s", "{:.0f}", True),
    ("100 flows: server CPU µs/datagram", "f100", "server_cpu_us_per_dgram", "{:.2f}", True),
    ("100 flows:   of which user", "f100", "server_user_us_per_dgram", "{:.2f}", False),
    ("100 flows:   of which kernel", "f100", "server_sys_us_per_dgram", "{:.2f}", False),
    ("100 flows: server CPUs busy", "f100", lambda r: float(r["server_cpu_s"]) / float(r["secs"]), "{:.2f}", False),
    ("100 flows: round trip p50 µs", "f100", "p50_us", "{:.0f}", False),
    ("100 flows: round trip p99 µs", "f100", "p99_us", "{:.0f}", False),
    ("100 flows: client CPU µs/datagram", "f100", "client_cpu_us_per_dgram", "{:.2f}", False),
    ("100 flows: client datagrams/recvmmsg", "f100", "client_recv_batch", "{:.2f}", False),
    ("100 flows: lost (sum of rounds)", "f100", "lost", "SUM", False),
    ("noise: other procs' CPUs, 1 flow", "f1", others_cpus, "{:.2f}", False),
    ("noise: other procs' CPUs, 100 flows", "f100", others_cpus, "{:.2f}", False),
]

SYS_ROWS = [
    ("syscalls/datagram, all", lambda r: float(r["sc_all"]) / float(r["dgrams"]), "{:.3f}"),
    ("  recvmmsg", per_dgram("recvmmsg"), "{:.3f}"),
    ("  sendmmsg", per_dgram("sendmmsg"), "{:.3f}"),
    ("  recvfrom", per_dgram("recvfrom"), "{:.3f}"),
    ("  sendto", per_dgram("sendto"), "{:.3f}"),
    ("  recvmsg + sendmsg", lambda r: calls(r, ["recvmsg", "sendmsg"]) / float(r["dgrams"]), "{:.3f}"),
    ("  epoll_wait/pwait/pwait2", wait_per_dgram, "{:.3f}"),
    ("  futex", per_dgram("futex"), "{:.3f}"),
    ("  read + write", lambda r: calls(r, ["read", "write"]) / float(r["dgrams"]), "{:.3f}"),
    ("  epoll_ctl", per_dgram("epoll_ctl"), "{:.3f}"),
    ("datagrams per receive call", recv_batch, "{:.2f}"),
    ("datagrams per recvmmsg that got any", recvmmsg_ok_batch, "{:.2f}"),
    ("recvmmsg calls that got none", recvmmsg_empty_share, "{:.0%}"),
    ("datagrams per send call", send_batch, "{:.2f}"),
    ("datagrams/s under perf", lambda r: float(r["dgrams_s"]), "{:.0f}"),
]


def ok(r):
    return "failed" not in r


def value(r, key):
    try:
        v = key(r) if callable(key) else float(r[key])
    except (KeyError, ValueError, ZeroDivisionError):
        return None
    return v


def by_round(rows, server, scenario, key):
    out = {}
    for r in rows:
        if r["server"] == server and r["scenario"] == scenario and ok(r):
            v = value(r, key)
            if v is not None:
                out[int(r["round"])] = v
    return out


def fmt_cell(fmt, v, w):
    if v is None:
        return f"{'-':>{w}}"
    return f"{fmt.format(v):>{w}}"


def paired(rows, a, b, scenario, key):
    va, vb = by_round(rows, a, scenario, key), by_round(rows, b, scenario, key)
    return {k: va[k] / vb[k] for k in sorted(va) if k in vb and vb[k]}


def main():
    header = open(sys.argv[1]).read().rstrip("\n")
    rows = parse(sys.argv[2])
    present = {r["server"] for r in rows}
    servers = [s for s in ORDER if s in present] + sorted(present - set(ORDER))
    daemons = [s for s in servers if s != PEER]
    ratio_of = [d for d in daemons if PEER in present]

    print(header)
    print()
    label_w = max(len(r[0]) for r in ROWS) + 1
    col_w = [max(10, len(c)) for c in servers]
    rnames = [f"{d}÷{PEER}" for d in ratio_of]
    rw = [max(22, len(n)) for n in rnames]
    head = f"{'metric (median of rounds)':<{label_w}} " + " ".join(f"{c:>{w}}" for c, w in zip(servers, col_w))
    if ratio_of:
        head += "  | " + " ".join(f"{n:>{w}}" for n, w in zip(rnames, rw))
    print(head)
    print("-" * len(head))
    for label, sc, key, fmt, want_ratio in ROWS:
        cells = []
        for c, w in zip(servers, col_w):
            vals = list(by_round(rows, c, sc, key).values())
            failed = any(r["server"] == c and r["scenario"] == sc and not ok(r) for r in rows)
            if fmt == "SUM":
                cells.append(f"{int(sum(vals)) if vals else '-':>{w}}" + ("!" if failed else ""))
            elif not vals:
                cells.append(f"{'FAIL' if failed else '-':>{w}}")
            else:
                cells.append(fmt_cell(fmt, statistics.median(vals), w))
        line = f"{label:<{label_w}} " + " ".join(cells)
        if ratio_of and want_ratio:
            rc = []
            for d, w in zip(ratio_of, rw):
                pr = list(paired(rows, d, PEER, sc, key).values())
                rc.append(f"{statistics.median(pr):.2f} ({min(pr):.2f}..{max(pr):.2f})".rjust(w) if pr else f"{'-':>{w}}")
            line += "  | " + " ".join(rc)
        print(line)
    if ratio_of:
        print(f"(÷{PEER}: median of the per-round ratios (range); server CPU = utime+stime of /proc/PID/stat over the window,")
        print(" all threads; round trip from per-wake-up timestamps in the client)")

    # Per-round rates, and the target.
    print()
    print("datagrams/s per round:")
    for sc, name in (("f1", "1 flow"), ("f100", "100 flows")):
        for s in servers:
            v = by_round(rows, s, sc, "dgrams_s")
            noisy = {k for k, r in ((int(r["round"]), r) for r in rows if r["server"] == s and r["scenario"] == sc and ok(r))
                     if value(r, others_cpus) is not None and value(r, others_cpus) > NOISY}
            cells = " ".join(f"{v[k]:.0f}{'*' if k in noisy else ''}" for k in sorted(v))
            print(f"  {name:<9} {s:<12} {cells}")
    print(f"  (* = other processes took > {NOISY} CPUs in that window)")

    if ratio_of:
        print()
        print(f"target: datagrams/s at 100 flows >= {TARGET}x the minimal loop, judged on the median of the per-round ratios:")
        for d in ratio_of:
            pr = paired(rows, d, PEER, "f100", "dgrams_s")
            if not pr:
                print(f"  {d}: no paired rounds")
                continue
            # Rounds where another process took > NOISY CPUs in either window are left out of the
            # verdict when at least 2 clean rounds remain.
            noise = {}
            for r in rows:
                if r["scenario"] == "f100" and r["server"] in (d, PEER) and ok(r):
                    v = value(r, others_cpus)
                    k = int(r["round"])
                    noise[k] = max(noise.get(k, 0.0), v if v is not None else 0.0)
            clean = {k: v for k, v in pr.items() if noise.get(k, 0.0) <= NOISY}
            judged = clean if len(clean) >= 2 else pr
            m = statistics.median(judged.values())
            per = " ".join(f"{v:.2f}{'' if k in clean else '*'}" for k, v in pr.items())
            basis = f"{len(clean)} clean rounds" if judged is clean else f"all {len(pr)} rounds, fewer than 2 clean: NOISY"
            verdict = ("met" if m >= TARGET else "NOT MET") + f" (on {basis})"
            cpu = paired(rows, PEER, d, "f100", "server_cpu_us_per_dgram")  # minimal ÷ daemon: >1 = daemon cheaper
            cpu_s = f"; minimal's CPU/datagram ÷ {d}'s: {statistics.median(cpu.values()):.2f}" if cpu else ""
            print(f"  {d:<12} {m:.2f}x (per round {per}): {verdict}{cpu_s}")

    # The rate limiter's cost: tcpechod-rl against tcpechod, round by round.
    if "tcpechod" in present and "tcpechod-rl" in present:
        print()
        print("rate limiter (never dropping) cost, tcpechod-rl ÷ tcpechod, median of per-round ratios (range):")
        for sc, name in (("f1", "1 flow"), ("f100", "100 flows")):
            parts = []
            for key, what in (("dgrams_s", "datagrams/s"), ("server_cpu_us_per_dgram", "CPU/datagram"),
                              ("server_user_us_per_dgram", "user CPU/datagram")):
                pr = list(paired(rows, "tcpechod-rl", "tcpechod", sc, key).values())
                if pr:
                    parts.append(f"{what} {statistics.median(pr):.2f} ({min(pr):.2f}..{max(pr):.2f})")
            print(f"  {name:<9}  " + ", ".join(parts))

    # Syscalls.
    sys_rows = [r for r in rows if r["scenario"].startswith("sys-")]
    if sys_rows:
        print()
        print("server syscalls, perf stat -p PID over exactly the client's window (separate windows; median of rounds):")
        for sc, name in (("sys-f1", "1 flow"), ("sys-f100", "100 flows")):
            cols = [s for s in servers if by_round(rows, s, sc, "dgrams")]
            if not cols:
                continue
            lw = max(len(x[0]) for x in SYS_ROWS) + 2
            print(f"  {name:<{lw - 2}} " + " ".join(f"{c:>12}" for c in cols))
            for label, key, fmt in SYS_ROWS:
                cells = []
                for c in cols:
                    vals = [v for v in by_round(rows, c, sc, key).values() if v is not None]
                    cells.append(fmt_cell(fmt, statistics.median(vals) if vals else None, 12))
                if all(x.strip() in ("-", "0.000", "0%") for x in cells) and label.startswith("  "):
                    continue
                print(f"  {label:<{lw - 2}} " + " ".join(cells))
        print("  (per datagram = server calls ÷ datagrams echoed in the window; a datagram is received and sent once)")


if __name__ == "__main__":
    main()
