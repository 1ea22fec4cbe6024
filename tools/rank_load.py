#!/usr/bin/env python3
"""Closed-loop HTTP/1.1 load on POST /rank that keeps every answer's status and latency,
so each kind of answer is timed on its own: full (200, "degraded": null), reduced_m and
recall_only (200, degraded), 503 (shed), 504 (late) and any other status.

Each of CLIENTS keep-alive connections sends the request file, waits for the whole answer
and sends again, for SECONDS (or until REQUESTS answers in all with --requests). The
latency of an answer runs from the first byte sent to the last byte read. Python's
standard library only; one event loop is enough for the rates a 2-core server reaches.

  tools/rank_load.py --port 8080 --clients 64 --seconds 10 --body request.json
  tools/rank_load.py --port 8080 --clients 8 --requests 4000 --body examples/rank_request.json
  tools/rank_load.py --port 8080 --clients 128 --seconds 10 --body request.json --honor-retry-after

By default every client sends again at once, whatever the answer (as wrk does); with
--honor-retry-after a client refused with Retry-After waits that long first, as a
well-behaved HTTP client does.

Prints one line per kind (count, p50, p99, max in ms) and a summary line:
  answers N; goodput G/s (200s); all: p50 … p99 … max … ms
and, with --json FILE, writes the same figures as JSON.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time

KINDS = ("full", "reduced_m", "recall_only", "503", "504", "other")


def kind_of(status: int, body: bytes) -> str:
    if status == 200:
        if b'"degraded":null' in body:
            return "full"
        if b'"degraded":"reduced_m"' in body:
            return "reduced_m"
        return "recall_only"
    if status in (503, 504):
        return str(status)
    return "other"


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, float, bool]:
    """The status, the body, the Retry-After seconds (0 without one) and whether the
    server closes the connection after it (`Connection: close`)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    retry_after = 0.0
    closes = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "retry-after":
            retry_after = float(value)
        elif name == "connection":
            closes = value.strip().lower() == "close"
    return status, await reader.readexactly(length), retry_after, closes


async def drain(writer: asyncio.StreamWriter) -> None:
    """Waits for the request to be sent; a server that answered early may close first."""
    try:
        await writer.drain()
    except ConnectionError:
        pass


async def client(port, payload, stop_at, budget, answers, honor_retry_after):
    reader = writer = None
    while time.monotonic() < stop_at and (budget is None or budget[0] > 0):
        if budget is not None:
            budget[0] -= 1
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.monotonic()
        writer.write(payload)
        try:
            # Read while the body is still being written: an early answer must not wait.
            drained = asyncio.ensure_future(drain(writer))
            status, body, retry_after, closes = await read_answer(reader)
            if closes:
                drained.cancel()
                writer.close()
                reader = writer = None
            else:
                await drained
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            reader = writer = None
            answers.append(("other", time.monotonic() - start))
            continue
        answers.append((kind_of(status, body), time.monotonic() - start))
        if honor_retry_after and retry_after:
            await asyncio.sleep(min(retry_after, max(0.0, stop_at - time.monotonic())))
    if writer is not None:
        writer.close()


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q / 100 * len(sorted_values)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--body", required=True, help="JSON request file")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests", type=int, help="stop after this many answers in all")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--honor-retry-after",
        action="store_true",
        help="a client that is refused waits as Retry-After says before it sends again",
    )
    args = parser.parse_args()

    body = open(args.body, "rb").read()
    payload = (
        f"POST /rank HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    answers: list[tuple[str, float]] = []
    budget = [args.requests] if args.requests else None
    stop_at = time.monotonic() + (args.seconds if budget is None else 3600)
    began = time.monotonic()
    await asyncio.gather(
        *(
            client(args.port, payload, stop_at, budget, answers, args.honor_retry_after)
            for _ in range(args.clients)
        )
    )
    elapsed = time.monotonic() - began

    figures = {"clients": args.clients, "seconds": elapsed, "kinds": {}}
    for kind in KINDS:
        ms = sorted(1000 * t for k, t in answers if k == kind)
        figures["kinds"][kind] = {
            "count": len(ms),
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "max_ms": ms[-1] if ms else float("nan"),
        }
    every = sorted(1000 * t for _, t in answers)
    ok = sum(figures["kinds"][k]["count"] for k in ("full", "reduced_m", "recall_only"))
    figures.update(
        answers=len(answers),
        goodput_per_s=ok / elapsed,
        p50_ms=percentile(every, 50),
        p99_ms=percentile(every, 99),
        max_ms=every[-1] if every else float("nan"),
        mean_ms=statistics.fmean(every) if every else float("nan"),
    )
    for kind, f in figures["kinds"].items():
        if f["count"]:
            print(
                f"  {kind:<11} {f['count']:>6}  p50 {f['p50_ms']:7.1f}  "
                f"p99 {f['p99_ms']:7.1f}  max {f['max_ms']:7.1f} ms"
            )
    print(
        f"answers {len(answers)}; goodput {figures['goodput_per_s']:.1f}/s (200s); "
        f"all: p50 {figures['p50_ms']:.1f} p99 {figures['p99_ms']:.1f} "
        f"max {figures['max_ms']:.1f} ms"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=1)
    return 0 if figures["kinds"]["other"]["count"] == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
