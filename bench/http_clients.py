"""Delivery HTTP clients compared: CPU per POST of the client process (time.process_time, which
the machine's load barely moves) and wall time, for the same fan-out shape as bench.fanout: one
POST of the same 1.5 kB body to each of N hosts (127.0.a.b on one port, bench/sink.py), up to
`--concurrency` in flight, arms alternating, medians of `--rounds`. The signatures are made
once beforehand (the sink counts them bad; this measures the transport only).

    .venv/bin/python -m bench.http_clients [--hosts 1000] [--concurrency 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import REPO, free_port
from bench.sink import address
from keys.keypair import generate_keypair

BODY = b'{"type":"Create","content":"' + b"x" * 1500 + b'"}'


async def _httpx(urls: list[str], concurrency: int) -> None:
    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(url: str) -> None:
            async with gate:
                resp = await client.post(url, content=BODY,
                                         headers={"Content-Type": "application/activity+json"})
                assert resp.status_code == 202, resp.status_code

        await asyncio.gather(*(one(u) for u in urls))


async def _aiohttp(urls: list[str], concurrency: int) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=1024, limit_per_host=4)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        gate = asyncio.Semaphore(concurrency)

        async def one(url: str) -> None:
            async with gate, session.post(
                    url, data=BODY, headers={"Content-Type": "application/activity+json"}
            ) as resp:
                await resp.read()
                assert resp.status == 202, resp.status

        await asyncio.gather(*(one(u) for u in urls))


CLIENTS = {"httpx": _httpx, "aiohttp": _aiohttp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port(address(0))
    with tempfile.TemporaryDirectory(prefix="entraide-bench-") as tmp:
        key = Path(tmp, "key.pem")
        key.write_text(generate_keypair().public_pem)
        sink = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", "--hosts", str(args.hosts), "--port",
             str(port), "--public-key", str(key)],
            cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
            urls = [f"http://{address(n)}:{port}/inbox" for n in range(args.hosts)]
            cpu: dict[str, list[float]] = {}
            wall: dict[str, list[float]] = {}
            for round_no in range(args.rounds):
                for name in sorted(CLIENTS, reverse=round_no % 2 == 1):
                    c0, w0 = time.process_time(), time.perf_counter()
                    asyncio.run(CLIENTS[name](urls, args.concurrency))
                    cpu.setdefault(name, []).append((time.process_time() - c0) / len(urls))
                    wall.setdefault(name, []).append(time.perf_counter() - w0)
                    print(f"  round {round_no + 1} {name:8} CPU {cpu[name][-1] * 1e6:6.0f} "
                          f"µs/POST  wall {wall[name][-1]:.2f} s", flush=True)
        finally:
            sink.terminate()
            sink.wait(timeout=10)
    print(f"medians of {args.rounds} rounds, {args.hosts} hosts, {args.concurrency} in flight:")
    for name in CLIENTS:
        print(f"  {name:8} CPU {statistics.median(cpu[name]) * 1e6:6.0f} µs/POST  "
              f"wall {statistics.median(wall[name]):.2f} s")
    print(f"RATIO httpx/aiohttp CPU per POST: "
          f"{statistics.median(cpu['httpx']) / statistics.median(cpu['aiohttp']):.2f}")


if __name__ == "__main__":
    main()
