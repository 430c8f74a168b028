#!/usr/bin/env python3
"""Cold start of `switchyard serve` to ready, and idle memory.

Starts the release binary on a fresh SQLite file N times, polls /readyz until
200, prints the time from spawn to ready and the resident memory after 2 s
idle, then the medians. Build first: cargo build --release -p switchyard
Usage: python3 bench/coldstart.py [RUNS]
"""
import os, statistics, subprocess, sys, tempfile, time, urllib.request

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
binary = os.path.join(os.path.dirname(__file__), "..", "target", "release", "switchyard")
ready_ms, rss_mib = [], []
for run in range(runs):
    db = os.path.join(tempfile.mkdtemp(), "cold.db")
    env = dict(os.environ, DATABASE_URL=f"sqlite://{db}", EVOLUTION_URL="http://127.0.0.1:9", CONSOLE_BIND_ADDR="off",
               EVOLUTION_API_KEY="x", BIND_ADDR="127.0.0.1:18081", RUST_LOG="error")
    started = time.monotonic()
    proc = subprocess.Popen([binary, "serve"], env=env)
    while True:
        try:
            if urllib.request.urlopen("http://127.0.0.1:18081/readyz", timeout=1).status == 200:
                break
        except Exception:
            time.sleep(0.002)
    ready_ms.append((time.monotonic() - started) * 1000)
    time.sleep(2)
    with open(f"/proc/{proc.pid}/status") as status:
        rss = next(line for line in status if line.startswith("VmRSS")).split()[1]
    rss_mib.append(int(rss) / 1024)
    proc.terminate()
    proc.wait()
    print(f"run {run + 1}: ready in {ready_ms[-1]:.1f} ms, idle RSS {rss_mib[-1]:.1f} MiB")
print(f"median: ready in {statistics.median(ready_ms):.1f} ms, idle RSS {statistics.median(rss_mib):.1f} MiB")
