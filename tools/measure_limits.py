#!/usr/bin/env python3
"""Measures what bounds the service keeps, on a real `giftrank serve` (standard library only).

  python3 tools/measure_limits.py [--binary target/release/giftrank] [--uploads 200]

1. start: peak RSS (VmHWM) once ready, with 10 versions of the shipped bundle on disk;
2. names: a dense request of ~16 MiB of unique unknown feature names — its answer time,
   and the CPU the server spends in the 20 s after it was sent (work that outlives the
   answer would show here);
3. uploads: N concurrent clients each uploading a 16 MiB body slowly (1 MiB every
   100 ms); peak RSS of the server while they last, and how many were answered with each
   status.

Every load goes to 127.0.0.1 only, and each part ends by itself.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """`giftrank serve` on loopback port 0, until stopped."""

    def __init__(self, binary: str, repo: Path, env: dict[str, str]):
        environment = dict(os.environ, GIFTRANK_LOG_FORMAT="json", GIFTRANK_WATCH_EVENTS="false", **env)
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
             "--grpc-listen", "127.0.0.1:0", "--model-repo", str(repo)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment, text=True)
        self.address = None
        for line in self.process.stdout:
            try:
                fields = json.loads(line).get("fields", {})
            except json.JSONDecodeError:
                continue
            if "public" in fields:
                host, port = fields["public"].rsplit(":", 1)
                self.address = (host, int(port))
                break
        if self.address is None:
            raise SystemExit("the server exited before listening")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        for _ in range(600):
            if self.get("/readyz")[0] == 200:
                return
            time.sleep(0.05)
        raise SystemExit("the server never became ready")

    def get(self, path: str):
        connection = http.client.HTTPConnection(*self.address, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        except OSError:
            return 0, b""
        finally:
            connection.close()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def repository(versions: int) -> Path:
    repo = Path(tempfile.mkdtemp(prefix="giftrank-measure-"))
    for v in range(1, versions + 1):
        shutil.copytree(ROOT / "models/gift/1", repo / str(v))
    return repo


def measure_start(binary: str) -> None:
    repo = repository(10)
    try:
        server = Server(binary, repo, {})
        print(f"start, 10 versions on disk: VmHWM {status_kib(server.process.pid, 'VmHWM') / 1024:.0f} MiB, "
              f"VmRSS {status_kib(server.process.pid, 'VmRSS') / 1024:.0f} MiB")
        server.stop()
    finally:
        shutil.rmtree(repo)


def measure_names(binary: str) -> None:
    repo = repository(1)
    try:
        server = Server(binary, repo, {})
        count = 480_000
        names = [f"unknown_feature_{i:07d}" for i in range(count)]
        body = json.dumps({"feature_names": names,
                           "candidates": [{"id": "a", "values": [None] * count}]},
                          separators=(",", ":")).encode()
        pid = server.process.pid
        cpu_before = cpu_seconds(pid)
        started = time.monotonic()
        connection = http.client.HTTPConnection(*server.address, timeout=600)
        connection.request("POST", "/rank", body, {"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        answered = time.monotonic() - started
        time.sleep(max(0.0, 20 - answered))
        cpu = cpu_seconds(pid) - cpu_before
        print(f"names: {count:,} unique unknown names, {len(body) / MIB:.1f} MiB body: "
              f"HTTP {response.status} after {answered:.2f} s; server CPU in the 20 s after sending: {cpu:.1f} s")
        server.stop()
    finally:
        shutil.rmtree(repo)


def slow_upload(address, size: int, results: list, lock: threading.Lock) -> None:
    status = "closed"
    try:
        with socket.create_connection(address, timeout=120) as sock:
            sock.sendall((f"POST /rank HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                          f"content-length: {size}\r\n\r\n").encode())
            chunk = b" " * MIB
            sent = 0
            sock.settimeout(0.1)
            reply = b""
            while sent < size:
                part = chunk[: min(MIB, size - sent)]
                try:
                    sock.sendall(part)
                except OSError:
                    break
                sent += len(part)
                try:
                    data = sock.recv(4096)  # also the 100 ms pause between chunks
                    if data:
                        reply += data
                        break
                except socket.timeout:
                    pass
            sock.settimeout(120)
            while b"\r\n" not in reply:
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
            if reply.startswith(b"HTTP/1.1 "):
                status = reply.split(b" ")[1].decode()
    except OSError as e:
        status = type(e).__name__
    with lock:
        results.append(status)


def measure_uploads(binary: str, uploads: int) -> None:
    repo = repository(1)
    try:
        server = Server(binary, repo, {"GIFTRANK_REQUEST_TIMEOUT_MS": "60000"})
        pid = server.process.pid
        base = status_kib(pid, "VmRSS") / 1024
        results: list = []
        lock = threading.Lock()
        size = 16 * MIB - 1024
        threads = [threading.Thread(target=slow_upload, args=(server.address, size, results, lock))
                   for _ in range(uploads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        peak = status_kib(pid, "VmHWM") / 1024
        counts = {s: results.count(s) for s in sorted(set(results))}
        print(f"uploads: {uploads} concurrent slow 16 MiB bodies: RSS before {base:.0f} MiB, "
              f"peak {peak:.0f} MiB; answers {counts}")
        server.stop()
    finally:
        shutil.rmtree(repo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=str(ROOT / "target/release/giftrank"))
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--only", choices=["start", "names", "uploads"])
    args = parser.parse_args()
    if args.only in (None, "start"):
        measure_start(args.binary)
    if args.only in (None, "names"):
        measure_names(args.binary)
    if args.only in (None, "uploads"):
        measure_uploads(args.binary, args.uploads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
