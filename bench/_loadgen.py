"""Fallback load generator for bench/api.py when `wrk` is not installed (run as its own process).

Usage: python bench/_loadgen.py CONFIG.json. Opens `connections` threads, each sending requests
back to back for `duration` seconds (a new connection whenever the server closes one), and prints
one line `WRK_JSON {...}` with the same keys as the wrk script of bench/api.py. Python's GIL makes
it a weaker client than wrk: its figures are a lower bound of what the server can do.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time


def main() -> int:
    with open(sys.argv[1]) as handle:
        config = json.load(handle)
    host, port, mode = config["host"], config["port"], config["mode"]
    ids, duration, connections = config["ids"], float(config["duration"]), int(config["connections"])
    headers = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
    if mode != "health":
        headers["Authorization"] = f"Bearer {config['token']}"
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"non2xx": 0, "first_bad_status": 0, "err_connect": 0, "err_read": 0, "bytes": 0}
    start_at = time.monotonic() + 0.05
    deadline = start_at + duration

    def worker(tid: int) -> None:
        local: list[float] = []
        counter = 0
        conn = http.client.HTTPConnection(host, port, timeout=10)
        while time.monotonic() < start_at:
            time.sleep(0.001)
        while time.monotonic() < deadline:
            counter += 1
            opportunity_id = ids[(counter + tid * 37) % len(ids)]
            sent = headers
            if mode in ("put", "put_key"):
                method, path = "PUT", f"/opportunity/update-opportunity-procces/{opportunity_id}"
                body = (config["put_prefix"] + f"{tid}-{counter}" + config["put_suffix"]).encode()
                if mode == "put_key":
                    sent = {**headers, "Idempotency-Key": f"bench-{config['run']}-{tid}-{counter}"}
            elif mode == "get":
                method, path, body = "GET", f"/opportunity/{opportunity_id}", None
            else:
                method, path, body = "GET", "/health", None
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=sent)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                with lock:
                    counts["err_read"] += 1
                continue
            local.append((time.perf_counter() - started) * 1e6)
            if response.will_close:
                conn.close()
            with lock:
                counts["bytes"] += len(data)
                if not 200 <= response.status < 300:
                    counts["non2xx"] += 1
                    counts["first_bad_status"] = counts["first_bad_status"] or response.status
        conn.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()

    def pct(p: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]) if latencies else 0

    result = {
        "requests": len(latencies),
        "duration_us": int(duration * 1e6),
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "max_us": int(latencies[-1]) if latencies else 0,
        "mean_us": sum(latencies) / len(latencies) if latencies else 0.0,
        "err_write": 0,
        "err_status": counts["non2xx"],
        "err_timeout": 0,
        **counts,
    }
    print("WRK_JSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
