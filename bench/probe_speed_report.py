#!/usr/bin/env python3
"""Turns bench/probe_speed.sh's results.txt into the loadgen / tcpecho-probe table.

    probe_speed_report.py HEADER_FILE RESULTS_FILE [OUT_DIR]

results.txt has one line per round, scenario and client: "round=R scenario=X client=C k=v ...";
round=sys lines are the runs under perf stat (plus one line of syscall counts per client),
round=prof the runs under perf record. Numbers are medians over the rounds; the ratio
probe ÷ loadgen is taken per round (same round: seconds apart) and its median is the verdict.
"""
import os
import statistics
import sys

CLIENTS = ["loadgen", "probe"]
# Other processes' CPUs in a window above which it is marked (as probe_speed.sh's noisy_pair).
NOISY = {"pp1": 0.2, "pp100": 0.2, "stream": 0.6}


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
            if kv:
                rows.append(kv)
    return rows


def num(r, k):
    try:
        return float(r[k])
    except (KeyError, ValueError):
        return None


def per_gib(key):
    def f(r):
        v = num(r, key)
        if v is None:
            return None
        gib = float(r["bytes"]) / 2**30 if "bytes" in r else float(r["msgs"]) / 1024  # probe: 1 MiB messages
        return v / gib
    return f


def others(r):
    v, s = num(r, "other_cpu_s"), num(r, "secs")
    return max(0.0, v) / s if v is not None and s else None


# (label, scenario, key or function, format)
ROWS = [
    ("pp 1 conn: msgs/s", "pp1", "msgs_s", "{:.0f}"),
    ("pp 1 conn: p50 µs", "pp1", "p50_us", "{:.1f}"),
    ("pp 1 conn: p99 µs", "pp1", "p99_us", "{:.1f}"),
    ("pp 1 conn: client CPU µs/msg", "pp1", "client_cpu_us_per_msg", "{:.2f}"),
    ("pp 1 conn: server CPU µs/msg", "pp1", "server_cpu_us_per_msg", "{:.2f}"),
    ("pp 100 conns: msgs/s", "pp100", "msgs_s", "{:.0f}"),
    ("pp 100 conns: p50 µs", "pp100", "p50_us", "{:.0f}"),
    ("pp 100 conns: p99 µs", "pp100", "p99_us", "{:.0f}"),
    ("pp 100 conns: client CPU µs/msg", "pp100", "client_cpu_us_per_msg", "{:.2f}"),
    ("pp 100 conns: server CPU µs/msg", "pp100", "server_cpu_us_per_msg", "{:.2f}"),
    ("stream 1 conn: MiB/s (echoed)", "stream", "mib_s", "{:.0f}"),
    ("stream: client CPU s per GiB", "stream", per_gib("client_cpu_s"), "{:.3f}"),
    ("stream: server CPU s per GiB", "stream", per_gib("server_cpu_s"), "{:.3f}"),
    ("noise: other procs' CPUs, pp1", "pp1", others, "{:.2f}"),
    ("noise: other procs' CPUs, pp100", "pp100", others, "{:.2f}"),
    ("noise: other procs' CPUs, stream", "stream", others, "{:.2f}"),
]
RATIO_KEYS = {"pp1": "msgs_s", "pp100": "msgs_s", "stream": "mib_s"}
SYSCALLS = ["all", "sendto", "recvfrom", "epoll_wait", "epoll_pwait2", "setsockopt"]


def value(r, key):
    return key(r) if callable(key) else num(r, key)


def main():
    header, results = sys.argv[1], sys.argv[2]
    out_dir = sys.argv[3] if len(sys.argv) > 3 else None
    with open(header) as f:
        print(f.read().rstrip())
    rows = [r for r in load(results) if "failed" not in r]
    failed = [r for r in load(results) if "failed" in r]
    timed = [r for r in rows if r.get("round", "").isdigit()]

    def values(sc, client, key):
        vs = [value(r, key) for r in timed if r["scenario"] == sc and r["client"] == client]
        return [v for v in vs if v is not None]

    print()
    print(f"{'metric (median of rounds)':34} {'loadgen':>10} {'probe':>10}   probe÷loadgen")
    print("-" * 72)
    for label, sc, key, fmt in ROWS:
        med = {}
        for c in CLIENTS:
            vs = values(sc, c, key)
            med[c] = statistics.median(vs) if vs else None
        if all(v is None for v in med.values()):
            continue
        cells = [fmt.format(med[c]) if med[c] is not None else "-" for c in CLIENTS]
        ratio = ""
        if med["loadgen"] and med["probe"] is not None and not label.startswith("noise"):
            ratio = f"{med['probe'] / med['loadgen']:.2f}"
        print(f"{label:34} {cells[0]:>10} {cells[1]:>10}   {ratio:>6}")

    print()
    set_aside = {(r["round"], r["scenario"]) for r in rows if r.get("round", "").endswith("n")}
    print("rate, probe ÷ loadgen per round (same round, back to back); * = a window where other processes took\n"
          "> 0.2 CPUs (stream 0.6), left out of the verdict when at least 2 rounds are clean"
          + (f"; {len(set_aside)} noisy pairs were set aside and run again" if set_aside else "") + ":")
    for sc, key in RATIO_KEYS.items():
        ratios, clean, marks = [], [], []
        for rnd in sorted({r["round"] for r in timed}, key=int):
            pair = {r["client"]: r for r in timed if r["round"] == rnd and r["scenario"] == sc}
            if "loadgen" not in pair or "probe" not in pair:
                continue
            lg, pr = num(pair["loadgen"], key), num(pair["probe"], key)
            if not lg or pr is None:
                continue
            noisy = any((others(pair[c]) or 0) > NOISY[sc] for c in CLIENTS)
            ratios.append(pr / lg)
            marks.append(f"{pr / lg:.2f}{'*' if noisy else ''}")
            if not noisy:
                clean.append(pr / lg)
        if not ratios:
            continue
        used = clean if len(clean) >= 2 else ratios
        m = statistics.median(used)
        verdict = "met" if m >= 1.0 else "not met by < 5%" if m >= 0.95 else "NOT MET"
        which = f"{len(clean)} clean rounds" if used is clean else f"all {len(ratios)} rounds, {len(clean)} clean"
        print(f"  {sc:7} {m:.2f} ({min(used):.2f}..{max(used):.2f}, {which}; per round {' '.join(marks)})"
              f"  target probe >= loadgen: {verdict}")
        for c in CLIENTS:
            vs = values(sc, c, key)
            if vs:
                print(f"          {c:8} {key} per round: " + " ".join(f"{v:.0f}" for v in vs))

    sys_rows = [r for r in rows if r.get("round") == "sys"]
    if sys_rows:
        print()
        print("client syscalls per message (perf stat on the client, whole process; its rate under perf):")
        print(f"  {'':16}" + "".join(f"{n:>13}" for n in SYSCALLS) + f"{'msgs/s':>10}")
        for sc in ["pp1", "pp100"]:
            for c in CLIENTS:
                run = [r for r in sys_rows if r["scenario"] == sc and r["client"] == c and "msgs" in r]
                counts = [r for r in sys_rows if r["scenario"] == sc and r["client"] == c and "sys_all" in r]
                if not run or not counts:
                    continue
                msgs = float(run[0]["msgs"])
                cells = "".join(
                    f"{float(counts[0]['sys_' + n]) / msgs:13.3f}" if num(counts[0], "sys_" + n) is not None
                    else f"{'-':>13}" for n in SYSCALLS)
                print(f"  {sc + ' ' + c:16}{cells}{float(run[0]['msgs_s']):10.0f}")

    if out_dir:
        for sc in ["pp100", "stream"]:
            for c in CLIENTS:
                p = os.path.join(out_dir, f"profile-{sc}-{c}-dso.txt")
                if not (os.path.exists(p) and os.path.getsize(p)):
                    continue
                with open(p) as f:
                    dso = ", ".join(" ".join(line.split()[:2]) for line in list(f)[:4])
                print()
                print(f"profile of {c} during {sc} (perf record -e cpu-clock; all of it in profile-{sc}-{c}.txt):")
                print(f"  by DSO: {dso}")
                with open(os.path.join(out_dir, f"profile-{sc}-{c}.txt")) as f:
                    user = [line.rstrip() for line in f if "[k]" not in line][:8]
                for line in user:
                    print("  " + line[:110])

    if failed:
        print()
        for r in failed:
            print(f"FAILED: round {r.get('round')} {r.get('scenario')} {r.get('client')}: {r.get('failed')}")


if __name__ == "__main__":
    main()
