#!/usr/bin/env python3
"""Measures the rollout policy (serving.toml) on the release binary, on a copy of the
shipped repository (version 3, a copy of shipped version 2, serves; version 2 is the
shadow: the same models).

1. Propagation: time from `serving.toml` renamed into place to the first /rank answer
   that follows it (a canary at 100% or 0% of keys, flipped each trial), with file-system
   events on.
2. Shadow cost: tools/rank_load.py at 8 clients on examples/rank_request.json (1,000
   candidates) with no shadow, shadow sample 1.0 and 0.25, each twice, interleaved;
   p50/p99, goodput and the shadow jobs scored and skipped.

Run from the repository root after `cargo build --release`:
    python3 tools/measure_rollout.py [--seconds 10]
Standard library only.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BINARY = "target/release/giftrank"
PORT = 18560


def post(body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/rank", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def metrics():
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics") as response:
        return response.read().decode()


def shadow_counts():
    text = metrics()
    return {
        outcome: int(float(re.search(rf'shadow_requests_total{{outcome="{outcome}"}} (\S+)', text)[1]))
        for outcome in ("scored", "skipped", "failed")
    }


def write_policy(repo, text):
    with open(os.path.join(repo, "serving.toml.tmp"), "w") as out:
        out.write(text)
    os.rename(os.path.join(repo, "serving.toml.tmp"), os.path.join(repo, "serving.toml"))


def reload():
    request = urllib.request.Request(f"http://127.0.0.1:{PORT + 1}/admin/reload", method="POST")
    urllib.request.urlopen(request).read()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    repo = tempfile.mkdtemp(prefix="giftrank-rollout-")
    for name, shipped in (("1", "1"), ("2", "2"), ("3", "2")):
        shutil.copytree(os.path.join("models/gift", shipped), os.path.join(repo, name))
    env = dict(os.environ, GIFTRANK_GRPC_LISTEN=f"127.0.0.1:{PORT + 2}", GIFTRANK_LOG_LEVEL="warn")
    server = subprocess.Popen(
        [BINARY, "serve", "--listen", f"127.0.0.1:{PORT}", "--admin-listen",
         f"127.0.0.1:{PORT + 1}", "--model-repo", repo],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/readyz").read()
                break
            except OSError:
                time.sleep(0.05)
        small = json.load(open("examples/rank_request.json"))
        small["candidates"] = small["candidates"][:20]
        small.pop("m", None)
        small["routing_key"] = "user-1"
        body = json.dumps(small).encode()

        print("== propagation: serving.toml renamed in -> first answer that follows it")
        delays = []
        for trial in range(6):
            percent, expected = (100, "1") if trial % 2 == 0 else (0, "3")
            began = time.monotonic()
            write_policy(repo, f'[canary]\nversion = "1"\npercent = {percent}\n')
            while post(body)["model_version"] != expected:
                time.sleep(0.002)
            delays.append(1000 * (time.monotonic() - began))
        print(f"  trials {len(delays)}: median {statistics.median(delays):.0f} ms, "
              f"max {max(delays):.0f} ms ({', '.join(f'{d:.0f}' for d in delays)})")

        print("== shadow cost: 8 clients x examples/rank_request.json")
        for run in range(2):
            for label, policy in (("no shadow", ""),
                                  ("shadow 1.0", '[shadow]\nversion = "2"\nsample = 1.0\n'),
                                  ("shadow 0.25", '[shadow]\nversion = "2"\nsample = 0.25\n')):
                write_policy(repo, policy)
                reload()
                before = shadow_counts()
                out = subprocess.run(
                    [sys.executable, "tools/rank_load.py", "--port", str(PORT), "--clients", "8",
                     "--seconds", str(args.seconds), "--body", "examples/rank_request.json"],
                    capture_output=True, text=True, check=True,
                ).stdout.strip().splitlines()[-1]
                after = shadow_counts()
                shadowed = {k: after[k] - before[k] for k in after}
                print(f"  {label:<12} {out}; shadow scored {shadowed['scored']}, "
                      f"skipped {shadowed['skipped']}, failed {shadowed['failed']}")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
