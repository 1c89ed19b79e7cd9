"""CPU and wall time per upstream request: aiohttp's ClientSession vs the gateway's own
keep-alive pool (``distillwarden.gateway.upstream_http``), against the shared fake upstream.

Why the gateway has its own client: the upstream call is on every request's hot path.

usage: python client_overhead.py [--requests 3000] [--out bench/results/gateway_client_overhead.json]
Starts the shared fake upstream on a free loopback port, runs each client sequentially
(one request in flight, keep-alive), alternating twice, and reports the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import uvloop

from distillwarden.gateway.upstream_http import UpstreamPool

FAKE = Path("/work/shared/bench/gateway/fake_upstream.py")
BODY = (
    b'{"model": "fake-model", "messages": [{"role": "user", "content": '
    b'"Say hello in one short sentence."}], "max_tokens": 32}'
)
HEADERS = {
    "content-type": "application/json",
    "authorization": "Bearer sk-upstream",
    "x-distillwarden-org": "org_bench",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _aiohttp(url: str, n: int) -> tuple[float, float]:
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(
        connector=conn, auto_decompress=False, skip_auto_headers=("User-Agent", "Accept")
    ) as s:
        for _ in range(200):
            async with s.post(url, data=BODY, headers=HEADERS) as r:
                await r.read()
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            async with s.post(url, data=BODY, headers=HEADERS) as r:
                await r.read()
        return (time.process_time() - c0) / n * 1e6, (time.perf_counter() - w0) / n * 1e6


async def _pool(base: str, n: int) -> tuple[float, float]:
    pool = UpstreamPool(base, connect_timeout_s=5, read_timeout_s=30, max_connections=64)
    pool.bind(asyncio.get_running_loop())
    head = pool.request_head("/chat/completions")
    extra = b"".join(k.encode() + b": " + v.encode() + b"\r\n" for k, v in HEADERS.items())
    for _ in range(200):
        await (await pool.post(head, extra, BODY)).read()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await (await pool.post(head, extra, BODY)).read()
    await pool.close()
    return (time.process_time() - c0) / n * 1e6, (time.perf_counter() - w0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/gateway_client_overhead.json"))
    a = ap.parse_args()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(FAKE), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        uvloop.install()
        runs: dict[str, list[tuple[float, float]]] = {"aiohttp": [], "distillwarden_pool": []}
        for _ in range(2):
            runs["aiohttp"].append(asyncio.run(_aiohttp(base + "/chat/completions", a.requests)))
            runs["distillwarden_pool"].append(asyncio.run(_pool(base, a.requests)))
    finally:
        proc.terminate()
        proc.wait()
    result = {
        "benchmark": "client CPU per upstream request (sequential, keep-alive, loopback)",
        "requests_per_run": a.requests,
        "runs": 2,
        "client_cpu_us_per_request": {
            k: round(statistics.median(c for c, _ in v), 1) for k, v in runs.items()
        },
        "wall_us_per_request": {
            k: round(statistics.median(w for _, w in v), 1) for k, v in runs.items()
        },
        "versions": {"aiohttp": aiohttp.__version__, "uvloop": uvloop.__version__,
                     "python": sys.version.split()[0]},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
