"""Compare ocproxy builds side by side: the relay and one ``ocproxy serve``
per checkout, started against one fake upstream and taking turns at each
load point; medians, ratios to the relay and every round's req/s printed.

Whole ``make bench`` runs on a shared machine drift by more than the 10 %
a change has to show; builds measured in the same rounds see the same
drift, and the per-round figures show whether one wins round after round.

Run: ``python bench/ab.py DIR [DIR ...] [--rounds 8] [--conns 1 64]``,
each DIR a checkout (e.g. ``git worktree add /tmp/old HEAD~3``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

from bench import interleaved, warm_up
from servers import _procs, free_port, rss_kb, start_server, start_upstream, stop


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkouts", nargs="+", help="directories holding the ocproxy builds to compare")
    ap.add_argument("--rounds", type=int, default=8, help="turns each server takes at each load point")
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each turn")
    ap.add_argument("--conns", type=int, nargs="+", default=[1, 16, 64], help="load points")
    args = ap.parse_args()
    wrk = bool(shutil.which("wrk"))
    tmp = tempfile.mkdtemp(prefix="ocproxy-ab-")
    try:
        up, desc = start_upstream(tmp, force_python=False)
        slow = free_port()  # nothing listens: no held streams here
        kinds = [("relay", "relay", args.checkouts[0])]
        kinds += [(f"{chr(65 + i)} {os.path.abspath(d)}", "ocproxy", os.path.abspath(d))
                  for i, d in enumerate(args.checkouts)]
        servers = {}
        for name, kind, root in kinds:
            home = os.path.join(tmp, str(len(servers)))
            os.makedirs(home)
            p, port = servers[name] = start_server(kind, home, up, slow, root=root)
            print(f"{name}: idle RSS after warm-up {warm_up(kind, p, port)['idle_rss_mb']:.1f} MB", flush=True)
        print(f"upstream: {desc}; load: {'wrk' if wrk else 'python'}", flush=True)
        for c in args.conns:
            samples = interleaved(servers, c, args.rounds, args.seconds, tmp, wrk)
            med = {name: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99", "cpu_us")}
                   for name, runs in samples.items()}
            base = med["relay"]
            for name, m in med.items():
                print(f"c={c:<3} {name}: {m['rps']:5.0f} req/s ({m['rps'] / base['rps']:.2f}x relay), "
                      f"p50 / p99 {m['p50']:.2f} / {m['p99']:.2f} ms, CPU/req {m['cpu_us']:.0f} us ({m['cpu_us'] / base['cpu_us']:.2f}x); "
                      f"rounds {[round(r['rps']) for r in samples[name]]}", flush=True)
        for name, (p, _) in servers.items():
            print(f"{name}: RSS at the end {rss_kb(p.pid) / 1024:.1f} MB")
    except KeyboardInterrupt:
        return 130
    finally:
        for p in list(_procs):
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
