"""ocproxy speed and footprint benchmark. Run: ``make bench``; bench/README.md
says what the figures mean and holds the latest ones.

One run measures, side by side:

* ``relay``    -- bench/relay.py, the thinnest werkzeug + requests text relay;
* ``ocproxy``  -- the real ``ocproxy serve`` (werkzeug threaded server);
* ``gunicorn`` -- ``gunicorn -c python:ocproxy.gunicorn_conf --threads 64 -w 2
  ocproxy.wsgi:application`` (where a production host's extra throughput
  lies; not a target), state in memory;
* ``gunicorn-redis`` -- the same with ``state`` in a redis-server of its own
  (breakers, rate limits, key rotation shared by the workers);
* ``ccr`` -- claude-code-router 2.0 (Node), when ``make bench`` could install
  it with npm: the issue's comparison for non-streaming req/s. Its streams
  are not measured (see bench/README.md).

against a fake upstream on loopback: nginx serving a static completion JSON
and a static 2,000-delta SSE file when nginx is installed (``make bench``
installs nginx and wrk when run as root), else bench/fakeup.py. Held streams
go to bench/fakeup.py's slow upstream (one selector thread).

Figures: non-streaming req/s and p50/p99 at concurrency 1, 16, 64 (wrk
when installed, else a thread + http.client keep-alive load generator; the
servers take turns, medians of ``--rounds`` turns each); time
to first byte and total time of one 2,000-delta stream (median of N);
completed 2,000-delta streams/s at concurrency 16; RSS (VmRSS from
/proc/<pid>/status; summed over gunicorn's processes) idle and peak with 200
and 1,000 slow streams held open by a selector client, heartbeats on, every
delta counted; and ocproxy / relay ratios against the issue's targets.

Every process started here is in its own process group and is killed in a
``finally``. Timing claims live here, never in the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from clients import SLOW_DELTAS, SLOW_GAP, hold_streams, py_load, stream_once, streams_per_second, wrk_run
from servers import (
    DELTAS, HERE, PY, _procs, ccr_installed, cpu_seconds, free_port, redis_server_binary, rss_kb, spawn, start_redis,
    start_server, start_upstream, stop, wait_port,
)

KINDS = ("relay", "ocproxy", "ccr", "gunicorn", "gunicorn-redis")
#: Kinds whose streams are not measured: claude-code-router's streamed
#: request did not complete against the static fake upstream (0 deltas).
NO_STREAMS = ("ccr",)


def warm_up(kind: str, p: subprocess.Popen, port: int) -> dict:
    """A few requests of each kind (imports, pools, the token encoder), then
    the idle RSS."""
    for _ in range(20):
        py_load(port, 1, 0.05)
        if kind not in NO_STREAMS:
            stream_once(port)
    time.sleep(0.5)
    return {"idle_rss_mb": rss_kb(p.pid) / 1024}


def idle_cpu(servers: dict, results: dict, seconds: float) -> None:
    """CPU each server spends over ``seconds`` with no request in flight and
    no stream open (all idle at once, so one wait covers every server),
    scaled to milliseconds per minute."""
    before = {kind: cpu_seconds(p.pid) for kind, (p, _port) in servers.items()}
    time.sleep(seconds)
    for kind, (p, _port) in servers.items():
        results[kind]["idle_cpu_ms_min"] = (cpu_seconds(p.pid) - before[kind]) * 1000 * 60 / seconds


def interleaved(servers: dict, conns: int, rounds: int, seconds: float, tmp: str, wrk: bool) -> dict:
    """Each server's non-streaming runs at one load point, the servers taking
    turns for ``rounds`` rounds so that all see the same drift of a shared
    machine; each run gets the server's CPU per request (``cpu_us``)."""
    samples: dict = {name: [] for name in servers}
    for _ in range(rounds):
        for name, (p, port) in servers.items():
            cpu0, t0 = cpu_seconds(p.pid), time.monotonic()
            r = wrk_run(port, conns, seconds, tmp) if wrk else py_load(port, conns, seconds)
            r["cpu_us"] = (cpu_seconds(p.pid) - cpu0) / max(1.0, r["rps"] * (time.monotonic() - t0)) * 1e6
            samples[name].append(r)
    return samples


def load_points(servers: dict, results: dict, tmp: str, args, wrk: bool) -> None:
    """Non-streaming req/s at each concurrency, medians of interleaved rounds."""
    for c in (1, 16, 64):
        samples = interleaved(servers, c, args.rounds, args.seconds, tmp, wrk)
        for kind, runs in samples.items():
            results[kind][f"c{c}"] = {key: statistics.median(r[key] for r in runs)
                                      for key in ("rps", "p50", "p99", "cpu_us")}
            results[kind][f"c{c}"]["errors"] = sum(r["errors"] for r in runs)


def measure_streams(kind: str, p: subprocess.Popen, port: int, args) -> dict:
    res: dict = {}
    if kind in NO_STREAMS:
        return res
    runs = [stream_once(port) for _ in range(args.streams)]
    cpu0 = cpu_seconds(p.pid)
    runs += [stream_once(port) for _ in range(args.streams)]
    res["stream_cpu_ms"] = (cpu_seconds(p.pid) - cpu0) / args.streams * 1000
    res["ttfb_ms"] = statistics.median(r[0] for r in runs)
    res["stream_ms"] = statistics.median(r[1] for r in runs)
    res["stream_ok"] = all(r[2] == DELTAS and r[3] for r in runs)
    res["streams_s"], res["streams_bad"] = streams_per_second(port, 16, args.seconds)
    if kind.startswith("gunicorn"):
        res["held"] = {}  # 2 workers x 64 threads cannot hold 200+ streams: each stream holds a host thread
    else:
        time.sleep(1.0)
        res["held"] = {n: hold_streams(port, n, p.pid, SLOW_DELTAS * SLOW_GAP + 30) for n in args.held}
    return res


# -- report ----------------------------------------------------------------------


def fmt(x, spec=".0f"):
    return "-" if x is None else format(x, spec)


def report(results: dict, upstream_desc: str, loadgen: str, args) -> str:
    kinds = [k for k in KINDS if k in results]
    lines = [f"upstream: {upstream_desc}; load: {loadgen}; cpus: {os.cpu_count()}; "
             f"{args.rounds} x {args.seconds:g}s per load point (servers taking turns), {args.streams} streams for medians", ""]
    head = f"{'':34}" + "".join(f"{k:>16}" for k in kinds)
    lines.append(head)

    def row(label, get, spec=".0f"):
        cells = []
        for k in kinds:
            try:
                v = get(results[k])
            except (KeyError, TypeError):
                v = None
            cells.append(f"{fmt(v, spec):>16}" if not isinstance(v, str) else f"{v:>16}")
        lines.append(f"{label:34}" + "".join(cells))

    for c in (1, 16, 64):
        row(f"non-stream c={c} req/s", lambda r, c=c: r[f"c{c}"]["rps"])
        row(f"non-stream c={c} p50 / p99 ms",
            lambda r, c=c: f"{r[f'c{c}']['p50']:.2f} / {r[f'c{c}']['p99']:.2f}")
        row(f"non-stream c={c} CPU ms/1,000 req", lambda r, c=c: r[f"c{c}"]["cpu_us"])
        row(f"non-stream c={c} errors", lambda r, c=c: r[f"c{c}"]["errors"], "d")
    row("2,000-delta stream TTFB ms", lambda r: r["ttfb_ms"], ".2f")
    row("2,000-delta stream total ms", lambda r: r["stream_ms"], ".1f")
    row("CPU ms per 2,000-delta stream", lambda r: r["stream_cpu_ms"], ".1f")
    row("  every delta + message_stop", lambda r: "yes" if r["stream_ok"] else "NO")
    row("2,000-delta streams/s c=16", lambda r: r["streams_s"], ".1f")
    row("  incomplete streams", lambda r: r["streams_bad"], "d")
    row("RSS idle MB (after warm-up)", lambda r: r["idle_rss_mb"], ".1f")
    row(f"idle CPU ms/min ({args.idle_seconds:g}s idle)", lambda r: r["idle_cpu_ms_min"], ".1f")
    for n in args.held:
        row(f"RSS {n} held streams MB (peak)", lambda r, n=n: r["held"][n]["peak_rss_mb"], ".1f")
        row(f"  threads at peak", lambda r, n=n: r["held"][n]["peak_threads"], "d")
        row(f"  deltas lost / expected", lambda r, n=n: f"{r['held'][n]['lost']}/{r['held'][n]['expected']}")
        row(f"  streams completed", lambda r, n=n: r["held"][n]["complete"], "d")
        row(f"  keep-alives received", lambda r, n=n: r["held"][n]["keepalives"], "d")
    if "ccr" in kinds:
        lines.append("(ccr: claude-code-router, non-streaming rows only; its streams are not measured)")
    if "gunicorn" in kinds or "gunicorn-redis" in kinds:
        lines.append("(gunicorn: 2 workers x 64 threads hold at most 128 streams, so no held-stream rows; "
                     "RSS is master + workers)")
    if "relay" in results and "gunicorn-redis" in results:
        lines += ["", "gunicorn -w 2 / relay, non-stream  memory   redis   target (redis)"]
        for c in (1, 16, 64):
            b = results["relay"][f"c{c}"]["rps"]
            mem = results.get("gunicorn", {}).get(f"c{c}", {}).get("rps")
            red = results["gunicorn-redis"][f"c{c}"]["rps"]
            lines.append(f"{f'req/s c={c}':34} {fmt(mem and mem / b, '5.2f'):>6}   {red / b:5.2f}   >= 0.80   "
                         f"{'MET' if red / b >= 0.8 else 'NOT MET'}")

    if "relay" in results and "ocproxy" in results:
        o, b = results["ocproxy"], results["relay"]
        lines += ["", "ocproxy / relay                    ratio   target"]

        def ratio(label, x, y, target, ok):
            verdict = "" if target.startswith("(") else ("MET" if ok(x / y) else "NOT MET")
            lines.append(f"{label:34} {x / y:5.2f}   {target:<22} {verdict}".rstrip())

        # The relay-relative targets, which stand in for
        # claude-code-router's where it is not installed.
        ratio("req/s c=1", o["c1"]["rps"], b["c1"]["rps"], ">= 1.60", lambda v: v >= 1.6)
        ratio("req/s c=16", o["c16"]["rps"], b["c16"]["rps"], ">= 2.00", lambda v: v >= 2.0)
        ratio("req/s c=64", o["c64"]["rps"], b["c64"]["rps"], "(info)", lambda v: True)
        ratio("2,000-delta stream time", o["stream_ms"], b["stream_ms"], "<= 0.60", lambda v: v <= 0.6)
        ratio("streams/s c=16", o["streams_s"], b["streams_s"], "(info)", lambda v: True)
        for c in (1, 16):
            ratio(f"CPU per request c={c}", o[f"c{c}"]["cpu_us"], b[f"c{c}"]["cpu_us"],
                  "<= 0.80", lambda v: v <= 0.8)
        ratio("CPU per 2,000-delta stream", o["stream_cpu_ms"], b["stream_cpu_ms"], "(info)", lambda v: True)
        lines.append(f"{'ocproxy idle CPU ms/min':34} {o['idle_cpu_ms_min']:5.1f}   0 ms/min               "
                     f"{'MET' if o['idle_cpu_ms_min'] == 0 else 'NOT MET'}")
        lines.append(f"{'ocproxy idle RSS MB':34} {o['idle_rss_mb']:5.1f}   <= 60 MB               "
                     f"{'MET' if o['idle_rss_mb'] <= 60 else 'NOT MET'}")
        big = max(args.held) if args.held else None
        if big:
            h = o["held"][big]
            ok = h["peak_rss_mb"] <= 120 and h["lost"] == 0 and h["complete"] == big
            lines.append(f"{f'ocproxy {big} held streams MB':34} {h['peak_rss_mb']:5.1f}   <= 120 MB, none lost    "
                         f"{'MET' if ok else 'NOT MET'} (lost {h['lost']}, completed {h['complete']}/{big})")
    if "ccr" in results and "ocproxy" in results:
        o, r = results["ocproxy"], results["ccr"]
        lines += ["", "ocproxy / claude-code-router       ratio   target"]
        for c in (1, 16, 64):
            v = o[f"c{c}"]["rps"] / r[f"c{c}"]["rps"]
            target, verdict = (">= 1.00", "MET" if v >= 1.0 else "NOT MET") if c != 64 else ("(info)", "")
            lines.append(f"{f'req/s c={c}':34} {v:5.2f}   {target:<22} {verdict}".rstrip())
        for c in (1, 16):
            v = o[f"c{c}"]["cpu_us"] / r[f"c{c}"]["cpu_us"]
            lines.append(f"{f'CPU per request c={c}':34} {v:5.2f}   (info)")
        lines.append(f"{'idle RSS':34} {o['idle_rss_mb'] / r['idle_rss_mb']:5.2f}   (info)")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each load point")
    ap.add_argument("--rounds", type=int, default=3, help="turns each server takes at each load point (medians)")
    ap.add_argument("--streams", type=int, default=15, help="streams timed for the medians")
    ap.add_argument("--held", type=int, nargs="*", default=[200, 1000], help="held-stream counts")
    ap.add_argument("--idle-seconds", type=float, default=60.0, help="idle time over which CPU is measured")
    ap.add_argument("--only", nargs="*", choices=KINDS,
                    default=[k for k in KINDS if (k != "gunicorn-redis" or redis_server_binary())
                             and (k != "ccr" or ccr_installed())])
    ap.add_argument("--python-upstream", action="store_true", help="use bench/fakeup.py even if nginx exists")
    ap.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk exists")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(args.held or [0]) * 2 + 512
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
        except (ValueError, OSError):
            pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < want:
        print(f"note: open-file limit {soft} is too low for {max(args.held)} held streams; "
              f"capping held streams at {(soft - 512) // 2}", file=sys.stderr)
        args.held = [min(n, max(0, (soft - 512) // 2)) for n in args.held]

    wrk = bool(shutil.which("wrk")) and not args.python_load
    if not wrk and not args.python_load:
        print("note: wrk not found (make bench installs it as root); using the Python load generator, "
              "whose own CPU use lowers every req/s figure", file=sys.stderr)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="ocproxy-bench-")
    results: dict = {}
    try:
        up, desc = start_upstream(tmp, args.python_upstream)
        slow_port = free_port()
        slow = spawn([PY, os.path.join(HERE, "fakeup.py"), "slow", "--port", str(slow_port),
                      "--deltas", str(SLOW_DELTAS), "--gap", str(SLOW_GAP)])
        wait_port(slow_port, slow)
        redis_url = start_redis(tmp) if "gunicorn-redis" in args.only else None
        servers = {}
        for kind in args.only:
            print(f"starting {kind} ...", file=sys.stderr, flush=True)
            p, port = servers[kind] = start_server(kind, tmp, up, slow_port, redis_url=redis_url)
            results[kind] = warm_up(kind, p, port)
        print(f"idle CPU over {args.idle_seconds:g}s ...", file=sys.stderr, flush=True)
        idle_cpu(servers, results, args.idle_seconds)
        print("non-streaming load points, servers taking turns ...", file=sys.stderr, flush=True)
        load_points(servers, results, tmp, args, wrk)
        for kind, (p, port) in servers.items():
            print(f"streams: {kind} ...", file=sys.stderr, flush=True)
            results[kind].update(measure_streams(kind, p, port, args))
        print(report(results, desc, "wrk" if wrk else "python threads + http.client", args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for p in list(_procs):
            stop(p)
        if os.environ.get("BENCH_KEEP_TMP"):
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
