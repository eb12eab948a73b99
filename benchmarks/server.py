"""The HTTP API's speed: scripted runs per second through `onionskin serve`, and their latency.

A temporary project with two agents on the scripted model: `assistant` (one model call) and
`tooling` (model call -> `lookup` tool -> model call; a middleware hands its model calls to a
scripted model that asks for the tool, since the `scripted` stand-in only echoes). Each
server is `onionskin serve PROJECT --workers W` (W = 1, then 2) in its own process, on a free
loopback port, with the project's default SQLite database (a fresh file per server) and
API keys for four tenants. A client process drives it: N concurrent clients (50 by default,
spread over the tenants) post runs back to back over one keep-alive connection each, for a
warm-up and then a measured window, as Server-Sent Events (`Accept: text/event-stream`, each
stream read to its end) and as JSON. A run counts as done only if it answered 200 for the
caller's own tenant and (SSE) its stream ended with `run_completed`; anything else is an
error, counted by kind.

The floor, measured in the same run on the same project: the same runs with the same N-way
concurrency through `Orchestrator.execute` in this process, without HTTP, (a) `bare`: the
project's orchestrator alone, (b) `runner`: the server's own `PipelineRunner` (tenant,
checkpoints, cost ledger and tenant configs on SQLite, live analytics), built by the app's
lifespan. `ratio_to_floor` is the runner floor's runs/s over the server's, as in
overhead.py: how many times the floor's time a run takes over HTTP.

The client is Python too, a minimal HTTP/1.1 client on asyncio streams (`_lean_http.py`:
httpx would take most of a core at these rates), and shares the machine's cores with the
server: its CPU use (cores) is reported next to the server's, and `server_cpu_ms_per_run`
(all server processes, from /proc) is the server's own cost, whatever the client takes.

With N clients each waiting for its answer before posting again, the mean latency is about
N / (runs/s) (Little's law): a p99 under 50 ms at 50 clients needs well over 1,000 runs/s.

Over 400 lines: the project, the servers, the client (this file, re-run with `--client`)
and the floor are one script, so that what is measured can be read in one place.

Usage: python benchmarks/server.py [--json] [--quick] [--clients N] [--seconds S]
(`--quick`: half-second rows, the `assistant` agent only: a smoke run, figures not judged)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

TENANTS = ("acme", "globex", "initech", "umbrella")
KEYS = {f"bench-{tenant}-key-0123456789": tenant for tenant in TENANTS}
INPUT = "where is order A1?"
TARGET: dict[str, Any] = {
    "workers": 2,
    "form": "sse",
    "pipeline": "assistant",
    "clients": 50,
    "runs_per_s": 1000,
    "p99_ms": 50,
}
"""The issue's bar: 1,000 runs/s over SSE with two workers, p99 under 50 ms at 50 clients."""

PROJECT = {
    "agents/assistant.yaml": "model: scripted\n",
    "agents/tooling.yaml": (
        "model: scripted\ntools: [lookup]\n"
        "middleware:\n  - use: onionskin_bench_tooling:ToolingModel\n"
    ),
    "tools/lookup.py": (
        "def lookup(topic: str) -> str:\n"
        '    """Look a topic up."""\n'
        '    return f"facts about {topic}"\n'
    ),
}
TOOLING_MODULE = '''\
"""Hands the agent's model calls to a scripted model that calls `lookup`, then answers."""
import dataclasses

from onionskin import ToolReturnPart
from onionskin.runtime.models.scripted import ScriptedModel, tool_call


def _script(request):
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, ToolReturnPart):
                return f"found: {part.content}"
    return tool_call("lookup", topic=request.messages[-1].text)


_MODEL = ScriptedModel(_script, name="scripted")


class ToolingModel:
    async def wrap_model_call(self, request, next):
        return await next(dataclasses.replace(request, model=_MODEL))
'''


def write_project(root: Path) -> Path:
    """The benchmark's project under `root/project` (its module folder: `root/lib`)."""
    for name, text in PROJECT.items():
        path = root / "project" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "lib").mkdir(exist_ok=True)
    (root / "lib" / "onionskin_bench_tooling.py").write_text(TOOLING_MODULE)
    return root / "project"


def run_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """Run `main` on uvloop when installed, as uvicorn serves, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def summary(latencies: list[float], errors: Counter[str], elapsed: float) -> dict[str, Any]:
    """Runs/s and latency percentiles (nearest rank, ms) of one measured window."""
    ordered = sorted(latencies)

    def rank(q: float) -> float:
        return round(ordered[max(0, -int(-q * len(ordered)) - 1)] * 1e3, 3) if ordered else 0.0

    return {
        "ok": len(ordered),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "elapsed_s": round(elapsed, 6),
        "runs_per_s": round(len(ordered) / elapsed, 1),
        **{f"p{q}_ms": rank(q / 100) for q in (50, 90, 99)},
        "max_ms": rank(1.0),
    }


Attempt = Callable[[int], Awaitable["str | None"]]
"""One run for client number N: None when it succeeded, else what went wrong."""


async def hammer(attempt: Attempt, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` loops running `attempt` back to back for `seconds`; their summary."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    async def client(number: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                problem = await attempt(number)
            except Exception as error:  # counted, not raised: the other clients go on
                problem = type(error).__name__
            if problem is None:
                latencies.append(time.perf_counter() - started)
            else:
                errors[problem] += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(number) for number in range(clients)))
    elapsed = time.perf_counter() - started
    return {**summary(latencies, errors, elapsed), "cpu_s": time.process_time() - cpu}


def _stream_problem(status: int, body: bytes, tenant: str) -> str | None:
    if status != 200:
        return f"HTTP {status}"
    if not body.rstrip().rsplit(b"\n\n", 1)[-1].startswith(b"event: run_completed"):
        return "stream did not end with run_completed"
    if f'"tenant_id":"{tenant}"'.encode() not in body:
        return "another tenant's run"
    return None


def _json_problem(status: int, body: bytes, tenant: str) -> str | None:
    if status != 200:
        return f"HTTP {status}"
    answer = json.loads(body)
    if answer.get("tenant_id") != tenant:
        return "another tenant's run"
    return None if isinstance(answer.get("output"), str) else "no output"


async def drive(spec: dict[str, Any]) -> None:
    """The client process: per scenario a warm-up, `measuring`, then its summary as JSON."""
    from urllib.parse import urlsplit

    from _lean_http import LeanConnection

    address = urlsplit(spec["url"])
    host, port = address.hostname, address.port
    assert host is not None  # we made the URL
    assert port is not None
    clients = spec["clients"]
    keys = list(KEYS.items())
    connections = [LeanConnection(host, port) for _ in range(clients)]
    body = json.dumps({"input": INPUT}).encode()
    for scenario in spec["scenarios"]:
        path = f"/api/v1/pipelines/{scenario['pipeline']}/execute"
        stream = scenario["form"] == "sse"

        async def attempt(number: int, path: str = path, stream: bool = stream) -> str | None:
            key, tenant = keys[number % len(keys)]
            headers = {"X-API-Key": key}
            if stream:
                headers["Accept"] = "text/event-stream"
            async with asyncio.timeout(60):
                status, answer = await connections[number].post(path, body, headers)
            problem = _stream_problem if stream else _json_problem
            return problem(status, answer, tenant)

        await hammer(attempt, clients, spec["warmup"])
        print("measuring", flush=True)
        print(json.dumps({**scenario, **await hammer(attempt, clients, spec["seconds"])}))
        sys.stdout.flush()
    for connection in connections:
        await connection.close()


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds used so far by process `pid` and its descendants (Linux; else None)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    try:
        entries = [entry for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime + stime
    if pid not in ticks:
        return None
    tree, found = {pid}, True
    while found:
        grown = tree | {child for child, parent in parents.items() if parent in tree}
        found, tree = grown != tree, grown
    return sum(ticks[member] for member in tree) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def until_listening(process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    import httpx2

    async with httpx2.AsyncClient(base_url=url) as http, asyncio.timeout(60):
        while process.returncode is None:
            try:
                if (await http.get("/openapi.json")).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            await asyncio.sleep(0.05)
    output = await asyncio.to_thread(log.read_text)
    raise RuntimeError(f"onionskin serve exited before listening:\n{output[-3000:]}")


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()  # uvicorn's supervisor stops its workers itself
    try:
        async with asyncio.timeout(15):
            await process.wait()
    except TimeoutError:
        os.killpg(process.pid, 9)  # its own session (start_new_session): workers included
        await process.wait()


async def measure_server(
    root: Path, workers: int, options: argparse.Namespace
) -> list[dict[str, Any]]:
    """Start `onionskin serve --workers W` on a fresh project, drive it from a client process."""
    project = write_project(root / f"workers-{workers}")
    port, log = free_port(), root / f"server-{workers}.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ONIONSKIN_")}
    env["ONIONSKIN_API_KEYS"] = ",".join(f"{key}={tenant}" for key, tenant in KEYS.items())
    env["PYTHONPATH"] = os.pathsep.join([str(project.parent / "lib"), env.get("PYTHONPATH", "")])
    with log.open("wb") as sink:
        server = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "onionskin", "serve", str(project)),
            *("--port", str(port), "--workers", str(workers)),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )
        try:
            await until_listening(server, f"http://127.0.0.1:{port}", log)
            url, client_log = f"http://127.0.0.1:{port}", root / f"client-{workers}.log"
            rows = await run_client(url, server.pid, client_log, options)
        finally:
            await stop(server)
    return [{"workers": workers, **row} for row in rows]


async def run_client(
    url: str, server_pid: int, log: Path, options: argparse.Namespace
) -> list[dict[str, Any]]:
    """Run the client process; sample the server's CPU around each measured window."""
    scenarios = [{"form": f, "pipeline": p} for p in options.pipelines for f in ("sse", "json")]
    spec = {"url": url, "clients": options.clients, "scenarios": scenarios}
    spec |= {"seconds": options.seconds, "warmup": options.warmup}
    with log.open("wb") as sink:
        client = await asyncio.create_subprocess_exec(
            *(sys.executable, __file__, "--client", json.dumps(spec)),
            stdout=asyncio.subprocess.PIPE,
            stderr=sink,
        )
        assert client.stdout is not None  # piped above
        rows, before = [], None
        async for line in client.stdout:
            if line.strip() == b"measuring":
                before = tree_cpu_seconds(server_pid)
                continue
            row, after = json.loads(line), tree_cpu_seconds(server_pid)
            cpu = after - before if after is not None and before is not None else None
            rows.append(with_cpu(row, cpu))
    if await client.wait() != 0:
        output = await asyncio.to_thread(log.read_text)
        raise RuntimeError(f"the client process failed:\n{output[-3000:]}")
    return rows


def with_cpu(row: dict[str, Any], server_cpu_s: float | None) -> dict[str, Any]:
    """`row` with the client's and the server's CPU use in cores, and the server's per run."""
    client_cpu_s, elapsed, ok = row.pop("cpu_s"), row["elapsed_s"], max(row["ok"], 1)
    row["client_cores"] = round(client_cpu_s / elapsed, 2)
    row["server_cores"] = None if server_cpu_s is None else round(server_cpu_s / elapsed, 2)
    per_run = None if server_cpu_s is None else round(server_cpu_s / ok * 1e3, 3)
    row["server_cpu_ms_per_run"] = per_run
    return row


async def measure_floor(root: Path, options: argparse.Namespace) -> list[dict[str, Any]]:
    """The same runs in this process, without HTTP: the bare orchestrator, the server's runner."""
    from onionskin.core.tenant import TenantContext
    from onionskin.project import load_project
    from onionskin.runtime.orchestrator import Orchestrator
    from onionskin.server import ServerSettings, create_app
    from onionskin.server.runner import PipelineRunner
    from onionskin.server.schemas import ExecuteRequest
    from onionskin.server.tenancy import RequestTenant

    sys.path.insert(0, str(root / "floor" / "lib"))  # the tooling agent's middleware
    project = load_project(write_project(root / "floor"))
    # The project's default file, named here: ONIONSKIN_DATABASE_URL must not redirect it.
    database = f"sqlite:///{project.path / '.onionskin' / 'onionskin.db'}"
    app = create_app(project, ServerSettings(anonymous=True), database_url=database)
    rows = []
    async with app.router.lifespan_context(app):
        runner: PipelineRunner = app.state.runner
        for name in options.pipelines:
            bare = project.orchestrator(name)

            async def bare_run(number: int, bare: Orchestrator = bare) -> None:
                tenant = TENANTS[number % len(TENANTS)]
                await bare.execute(INPUT, context=TenantContext(tenant_id=tenant))

            async def runner_run(number: int, name: str = name) -> None:
                org = TENANTS[number % len(TENANTS)]
                tenant = RequestTenant(org_id=org, user_id=None, org_role=None, request_id="bench")
                await runner.execute(name, ExecuteRequest(input=INPUT), tenant)

            for stack, run in (("bare", bare_run), ("runner", runner_run)):
                await hammer(run, options.clients, options.warmup)
                row = await hammer(run, options.clients, options.seconds)
                cpu_s = row.pop("cpu_s")
                row["cpu_ms_per_run"] = round(cpu_s / max(row["ok"], 1) * 1e3, 3)
                rows.append({"pipeline": name, "stack": stack, **row})
    return rows


async def measure(options: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(load, 2) for load in os.getloadavg()],
            "note": "the client (its own process) shares these CPUs with the server",
        },
        "settings": {
            "clients": options.clients,
            "tenants": len(TENANTS),
            "seconds": options.seconds,
            "warmup_seconds": options.warmup,
            "database": "sqlite (the project's default file)",
        },
    }
    with tempfile.TemporaryDirectory() as directory:
        report["floor"] = await measure_floor(Path(directory), options)
        report["http"] = [
            row
            for workers in options.workers
            for row in await measure_server(Path(directory), workers, options)
        ]
    floors = {r["pipeline"]: r for r in report["floor"] if r["stack"] == "runner"}
    for row in report["http"]:
        row["ratio_to_floor"] = round(
            floors[row["pipeline"]]["runs_per_s"] / max(row["runs_per_s"], 0.1), 2
        )
    report["target"] = target(report["http"], options.clients)
    return report


def target(rows: Sequence[dict[str, Any]], clients: int) -> dict[str, Any]:
    """The issue's bar, and whether the matching row reached it (None: not measured)."""
    keys = ("workers", "form", "pipeline")
    row = next((r for r in rows if all(r[k] == TARGET[k] for k in keys)), None)
    reached = None
    if row is not None and clients == TARGET["clients"]:
        reached = row["runs_per_s"] >= TARGET["runs_per_s"] and row["p99_ms"] < TARGET["p99_ms"]
    return {**TARGET, "reached": reached}


def print_table(report: dict[str, Any]) -> None:
    machine, settings = report["machine"], report["settings"]
    print(
        f"{settings['clients']} concurrent clients over {settings['tenants']} tenants, "
        f"{settings['seconds']} s per row after {settings['warmup_seconds']} s of warm-up; "
        f"{machine['cpus']} CPUs, load average before {machine['load_average_before'][0]}"
    )
    print(f"Note: {machine['note']}: see the client's cores next to the server's.\n")
    print("floor, in this process without HTTP (Orchestrator.execute, same concurrency):")
    print(f"{'pipeline':<11}{'stack':<8}{'runs/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/run':>12}")
    for row in report["floor"]:
        print(
            f"{row['pipeline']:<11}{row['stack']:<8}{row['runs_per_s']:>9.0f}"
            f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['cpu_ms_per_run']:>12.3f}"
        )
    print("\nonionskin serve (runs/s, latency ms; CPU in cores, server CPU ms per run):")
    head = ("workers", "form", "pipeline", "runs/s", "p50", "p90", "p99", "max", "errors")
    tail = ("server", "client", "srv ms/run", "x floor")
    print("".join(f"{h:<9}" if i < 3 else f"{h:>8}" for i, h in enumerate(head)), end="")
    print("".join(f"{h:>11}" for h in tail))
    for row in report["http"]:
        cells = [row["workers"], row["form"], row["pipeline"]]
        print("".join(f"{cell!s:<9}" for cell in cells), end="")
        print(f"{row['runs_per_s']:>8.0f}", end="")
        print("".join(f"{row[k]:>8.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")), end="")
        print(f"{row['errors']:>8}{row['server_cores']!s:>11}{row['client_cores']:>11}", end="")
        print(f"{row['server_cpu_ms_per_run']!s:>11}{row['ratio_to_floor']:>11}")
        for kind, count in row["error_kinds"].items():
            print(f"    {count} x {kind}")
    bar = report["target"]
    print(
        f"\ntarget: {bar['runs_per_s']} runs/s and p99 < {bar['p99_ms']} ms over SSE with "
        f"{bar['workers']} workers at {bar['clients']} clients: reached = {bar['reached']} "
        f"(mean latency ~ clients / runs/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="short windows (a smoke run)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--seconds", type=float, help="measured seconds per row (10; quick 0.5)")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # the client process's spec
    options = parser.parse_args()
    if options.client is not None:
        run_loop(drive(json.loads(options.client)))
        return
    if options.clients < 1 or (options.seconds is not None and options.seconds <= 0):
        parser.error("--clients must be at least 1 and --seconds more than 0")
    options.seconds = options.seconds or (0.5 if options.quick else 10.0)
    options.warmup = 0.2 if options.quick else 1.0
    options.workers = (1, 2)
    options.pipelines = ("assistant",) if options.quick else ("assistant", "tooling")
    report = run_loop(measure(options))
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
