"""Load generators of ``hyperrec bench serve``: ``wrk`` when it is installed, an httpx client otherwise.

``wrk`` (Debian package ``wrk``) is a C load generator: its own CPU cost per request is a fraction of the
servers', so it does not cap the figures the way a Python client on the same cores does. A generated Lua
script POSTs the benchmark's request bodies round-robin and counts non-200 answers and degraded ones; the
``done`` hook prints one JSON line that ``run_wrk`` parses. Both generators are closed-loop: each of the
``concurrency`` connections sends its next request when the previous answer has arrived.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

_MARK = "HYPERREC_WRK_JSON "
_LUA = """
local bodies = {%(bodies)s}
local n = #bodies
counter = 0
non200 = 0
degraded = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
setup = function(thread) table.insert(threads, thread) end
request = function()
  counter = counter + 1
  return wrk.format(nil, %(path)s, nil, bodies[(counter %% n) + 1])
end
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1
  elseif string.find(body, '"degraded":%%s*true') then degraded = degraded + 1 end
end
done = function(summary, latency, requests)
  local bad, slow = 0, 0
  for _, t in ipairs(threads) do bad = bad + t:get("non200"); slow = slow + t:get("degraded") end
  local e = summary.errors
  io.write(string.format('%(mark)s{"requests":%%d,"duration_us":%%d,"socket_errors":%%d,"timeouts":%%d,' ..
    '"non200":%%d,"degraded":%%d,"p50_us":%%d,"p95_us":%%d,"p99_us":%%d}\\n', summary.requests,
    summary.duration, e.connect + e.read + e.write, e.timeout, bad, slow, latency:percentile(50),
    latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured (latencies of successful answers only)."""

    requests: int
    errors: int
    degraded: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    wall_s: float
    generator: str


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_script(url: str, bodies: list[dict[str, Any]]) -> str:
    """The Lua script that POSTs ``bodies`` round-robin to ``url``'s path."""
    level = "=" * 8  # long-bracket strings: no escaping inside; JSON cannot contain "]========]"
    quoted = ",\n".join(f"[{level}[{json.dumps(body, separators=(',', ':'))}]{level}]" for body in bodies)
    return _LUA % {"bodies": quoted, "path": json.dumps(urlsplit(url).path), "mark": _MARK}


def run_wrk(url: str, bodies: list[dict[str, Any]], concurrency: int, duration_s: int, workdir: Path,
            timeout_s: float) -> LoadResult:
    """Drive ``url`` with wrk for ``duration_s`` seconds at ``concurrency`` connections (one wrk thread)."""
    script = Path(workdir) / "bench.lua"
    script.write_text(wrk_script(url, bodies), encoding="utf-8")
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration_s}s", f"--timeout={max(1, int(timeout_s))}s",
               "-s", str(script), url]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + timeout_s + 30, check=False
    )
    return parse_wrk_output(done.stdout, done.stderr, done.returncode)


def parse_wrk_output(stdout: str, stderr: str = "", returncode: int = 0) -> LoadResult:
    """The LoadResult of wrk's output (the JSON line the script's ``done`` hook printed)."""
    match = re.search(re.escape(_MARK) + r"(\{.*\})", stdout)
    if returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed (exit {returncode}): {(stderr or stdout).strip()[-500:]}")
    data = json.loads(match.group(1))
    errors = int(data["socket_errors"]) + int(data["timeouts"]) + int(data["non200"])
    return LoadResult(
        requests=int(data["requests"]), errors=errors, degraded=int(data["degraded"]),
        p50_ms=round(data["p50_us"] / 1000.0, 2), p95_ms=round(data["p95_us"] / 1000.0, 2),
        p99_ms=round(data["p99_us"] / 1000.0, 2), wall_s=data["duration_us"] / 1e6, generator="wrk",
    )


async def run_httpx(url: str, bodies: list[dict[str, Any]], concurrency: int, timeout_s: float) -> LoadResult:
    """Send every body once, ``concurrency`` at a time, with an httpx client (the fallback without wrk)."""
    import httpx

    latencies: list[float] = []
    errors = degraded = 0
    queue = list(bodies)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors, degraded
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                try:
                    response = await client.post(url, json=body)
                    ok = response.status_code == 200
                    degraded += ok and bool(response.json().get("degraded", False))
                except Exception:  # noqa: BLE001 - counted as an error, the bench goes on
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000.0 if latencies else np.array([np.nan])
    return LoadResult(
        requests=len(latencies) + errors, errors=errors, degraded=degraded,
        p50_ms=round(float(np.percentile(ms, 50)), 2), p95_ms=round(float(np.percentile(ms, 95)), 2),
        p99_ms=round(float(np.percentile(ms, 99)), 2), wall_s=wall, generator="httpx",
    )
