"""`onionskin serve --workers N`: workers on their own SO_REUSEPORT sockets, supervised.

Real processes: which worker holds a connection is read from /proc (Linux), so these tests
run where that exists.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import uvicorn
from tests.server._live_server import free_port
from tests.server.test_serve import invoke

from onionskin.cli._errors import CommandError
from onionskin.cli._workers import STARTUP_FAILURE, WorkerPool, bound_socket
from onionskin.project import Project

LINUX = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
STARTUP_SECONDS = 30.0


def _children(parent: int) -> set[int]:
    """The worker processes of `parent` (not multiprocessing's resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue  # exited meanwhile
            if int(fields[1]) == parent and b"spawn_main" in command:
                found.add(int(entry.name))
    return found


def _running(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of the established connections whose local port is `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state = int(fields[1].rpartition(":")[2], 16), fields[3]
        if local_port == port and state == "01":  # TCP_ESTABLISHED
            inodes.add(fields[9])
    return inodes


def _connections_held(pid: int, inodes: set[str]) -> int:
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held += 1
    return held


def _get(connection: socket.socket) -> bytes:
    """One keep-alive GET /openapi.json on `connection`; the status line."""
    connection.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: test\r\n\r\n")
    answer = b""
    while b"\r\n" not in answer:
        chunk = connection.recv(65536)
        assert chunk, "the server closed the connection"
        answer += chunk
    return answer.split(b"\r\n", 1)[0]


async def _until(condition: Callable[[], bool], failure: Callable[[], str]) -> None:
    """Until `condition()` holds, looking every 50 ms; fails with `failure()` after a while."""
    for _ in range(int(STARTUP_SECONDS / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(failure())


@pytest.fixture
async def server(project: Project, tmp_path: Path) -> AsyncIterator[tuple[Process, int]]:
    """`onionskin serve --workers 2` on a free port, both workers started."""
    port, log = free_port(), tmp_path / "serve.log"
    command = [sys.executable, "-m", "onionskin", "serve", str(project.path), "--insecure-local"]
    command += ["--workers", "2", "--port", str(port), "--db", f"sqlite:///{tmp_path}/w.db"]
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=sink
        )
    try:

        def started() -> bool:
            assert process.returncode is None, log.read_text()
            return log.read_text().count("Application startup complete") == 2

        await _until(started, log.read_text)
        yield process, port
    finally:
        if process.returncode is None:
            # The test failed before stopping it: take the workers down too.
            for child in _children(process.pid):
                os.kill(child, signal.SIGKILL)
            process.kill()
            await process.wait()


@LINUX
async def test_keep_alive_connections_are_spread_over_the_workers(
    server: tuple[Process, int],
) -> None:
    process, port = server
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    try:
        statuses = {_get(connection) for connection in connections}
        inodes = _established_inodes(port)
        held = {pid: _connections_held(pid, inodes) for pid in _children(process.pid)}
    finally:
        for connection in connections:
            connection.close()

    assert statuses == {b"HTTP/1.1 200 OK"}
    # The kernel hashes each connection to a worker: each gets about half. One shared socket
    # let one worker take nearly all of them (a chance of ~1e-7 of fewer than 5 here).
    busy = sorted(count for count in held.values() if count)
    assert len(busy) == 2, held
    assert sum(busy) == 40, held
    assert busy[0] >= 5, held


@LINUX
async def test_a_worker_that_dies_is_replaced_and_sigterm_stops_them_all(
    server: tuple[Process, int],
) -> None:
    process, port = server
    first = _children(process.pid)
    victim = min(first)

    os.kill(victim, signal.SIGKILL)
    # The dead one reaped and another started in its place:
    await _until(lambda: len(_children(process.pid) - {victim}) == 2, lambda: "no new worker")
    workers = _children(process.pid)
    with socket.create_connection(("127.0.0.1", port)) as connection:
        status = _get(connection)
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(STARTUP_SECONDS):
        code = await process.wait()

    assert victim not in workers
    assert len(workers & first) == 1  # the other worker served on
    assert status == b"HTTP/1.1 200 OK"
    assert code == 0
    assert not _running(workers)


def test_a_port_in_use_is_refused_before_any_worker_starts(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ONIONSKIN_API_KEYS", "a-key-of-twenty-chars-or-more=acme")
    started: list[object] = []
    monkeypatch.setattr(WorkerPool, "_start", lambda self: started.append(self))
    with socket.socket() as taken:  # a plain listener, which does not share its port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = invoke(str(project.path), "--workers", "2", "--port", str(port))

    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "another server" in result.stderr
    assert started == []


def test_an_address_that_does_not_resolve_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match=r"cannot listen on no-such-host\.invalid:80"):
        bound_socket("no-such-host.invalid", 80)


def test_workers_that_cannot_start_stop_the_pool_with_the_startup_failure_code() -> None:
    config = uvicorn.Config("no_such_module_for_onionskin:app", host="127.0.0.1", port=0)
    before = signal.getsignal(signal.SIGTERM)

    code = WorkerPool(config, 2).run()

    assert code == STARTUP_FAILURE
    assert signal.getsignal(signal.SIGTERM) is before  # the pool's handlers are gone


def test_a_pool_needs_an_import_string() -> None:
    with pytest.raises(CommandError, match="import string"):
        WorkerPool(uvicorn.Config(lambda: None), 2)
