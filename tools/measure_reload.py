"""Measures hot reload of the release binary on a copy of the shipped repository.

1. Publish latency: time from `bundle.toml` written (renamed into place) to the first
   /rank response naming the new version — with file-system events, and with events off
   so that only the periodic rescan finds it.
2. Latency during swaps: wrk at concurrency 4 on a small request, steady state vs. while a
   new version is published every 2 seconds (p50/p99 from wrk).

Run from the repository root after `cargo build --release`:
    python3 tools/measure_reload.py
Needs only the standard library and wrk (Debian package).
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

BINARY = "target/release/giftrank"
SOURCE = "models/gift/1"


def post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as response:
        return json.loads(response.read())


def small_request():
    with open("examples/rank_request.json") as f:
        request = json.load(f)
    request["candidates"] = request["candidates"][:100]
    request["m"] = 20
    request["k"] = 20
    return json.dumps(request).encode()


def publish(repo, version):
    """Copies version 1 into `version`, bundle.toml last (by rename); returns that moment."""
    target = os.path.join(repo, str(version))
    os.makedirs(target)
    for name in ("direct.txt", "stage2.txt", "canary.csv"):
        shutil.copy(os.path.join(SOURCE, name), target)
    shutil.copy(os.path.join(SOURCE, "bundle.toml"), os.path.join(target, "bundle.toml.tmp"))
    os.rename(os.path.join(target, "bundle.toml.tmp"), os.path.join(target, "bundle.toml"))
    return time.monotonic()


def start(repo, port, env):
    full_env = dict(os.environ, GIFTRANK_LOG_LEVEL="warn", **env)
    server = subprocess.Popen(
        [BINARY, "serve", "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{port + 1}",
         "--model-repo", repo],
        env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz")
            return server
        except OSError:
            time.sleep(0.05)


def publish_latency(env, port, trials):
    repo = tempfile.mkdtemp()
    shutil.copytree(SOURCE, os.path.join(repo, "1"))
    server = start(repo, port, env)
    url, body = f"http://127.0.0.1:{port}/rank", small_request()
    delays = []
    try:
        for trial in range(trials):
            version = trial + 2
            written = publish(repo, version)
            while post(url, body)["model_version"] != str(version):
                pass
            delays.append(time.monotonic() - written)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(repo)
    return delays


def wrk(port, seconds, request_file):
    out = subprocess.run(
        ["wrk", "-t", "4", "-c", "4", "-d", f"{seconds}s", "--latency", "-s", "tools/wrk_rank.lua",
         f"http://127.0.0.1:{port}/rank"],
        env=dict(os.environ, RANK_REQUEST=request_file), capture_output=True, text=True, check=True).stdout
    keep = [line.strip() for line in out.splitlines()
            if line.strip().startswith(("50%", "99%", "Requests/sec", "non-200"))]
    return " | ".join(keep)


def latency_during_swaps(port, seconds=20):
    repo = tempfile.mkdtemp()
    shutil.copytree(SOURCE, os.path.join(repo, "1"))
    request_file = os.path.join(repo, "request.json")
    with open(request_file, "wb") as f:
        f.write(small_request())
    server = start(repo, port, {})
    try:
        steady = wrk(port, seconds, request_file)
        stop = threading.Event()

        def publisher():
            version = 2
            while not stop.wait(2.0):
                publish(repo, version)
                version += 1

        thread = threading.Thread(target=publisher)
        thread.start()
        swapping = wrk(port, seconds, request_file)
        stop.set()
        thread.join()
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(repo)
    return steady, swapping


def main():
    events = publish_latency({"GIFTRANK_WATCH_EVENTS": "true", "GIFTRANK_RESCAN_INTERVAL_SECS": "0"}, 18580, 10)
    print("publish -> first response, events:       "
          f"min {min(events) * 1000:.0f} ms, median {sorted(events)[len(events) // 2] * 1000:.0f} ms, "
          f"max {max(events) * 1000:.0f} ms ({len(events)} versions)")
    rescan = publish_latency({"GIFTRANK_WATCH_EVENTS": "false", "GIFTRANK_RESCAN_INTERVAL_SECS": "10"}, 18590, 3)
    print("publish -> first response, rescan only:  "
          f"{', '.join(f'{d:.1f} s' for d in rescan)} (rescan every 10 s)")
    steady, swapping = latency_during_swaps(18600)
    print(f"wrk c=4, 100 candidates, steady:            {steady}")
    print(f"wrk c=4, 100 candidates, a swap every 2 s:  {swapping}")


if __name__ == "__main__":
    main()
