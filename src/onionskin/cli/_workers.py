"""`onionskin serve --workers N`: N uvicorn processes, each on its own SO_REUSEPORT socket.

uvicorn's own supervisor binds one socket and hands it to every worker, so the worker that
wakes first accepts whatever connections are waiting; long-lived keep-alive connections (a
load balancer's pool, a benchmark's clients) then stay that uneven: measured, one worker of
two holding 49 of 50 connections and doing all the work while the other idled. Here each
worker listens on a socket of its own, bound to the same address with `SO_REUSEPORT`, and
the kernel spreads new connections over them by a hash of their addresses. uvicorn has no
option for that, so the little supervision it needs is written here: start the workers,
start another when one dies, stop them all on SIGINT or SIGTERM.

The supervisor holds a socket of its own bound to the address, never listening (so it is
given no connections): a port in use fails before any worker starts, with `--port 0` the
workers share the port the system chose, and no other program can take the port while a
worker restarts. The price of a socket per worker: connections the kernel had queued for a
worker that dies, not yet accepted, are reset with it (a shared socket would hand them to
another worker); a worker that stops on SIGTERM finishes what it accepted first.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from onionskin.cli._errors import CommandError

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    import uvicorn

logger = logging.getLogger("uvicorn.error")

STARTUP_FAILURE = 3
"""A worker's exit code when it could not start serving (uvicorn's own code for it)."""
BACKLOG = 2048
"""Connections the kernel queues per worker before it accepts them (uvicorn's default)."""
CHECK_SECONDS = 0.5
"""How often the supervisor looks for workers that died."""
STOP_SECONDS = 30.0
"""How long stopping workers may take to finish their requests before they are killed."""


def reuse_port_available() -> bool:
    """True where sockets can share a port (`SO_REUSEPORT`: Linux, the BSDs, macOS)."""
    return hasattr(socket, "SO_REUSEPORT")


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port` with `SO_REUSEPORT`, not listening yet.

    Raises:
        CommandError: the address is taken by a program that does not share it, or cannot
            be bound at all.
    """
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, protocol)
    except OSError as error:
        raise CommandError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise CommandError(
            f"cannot listen on {host}:{port}: {error.strerror or error} (is another server "
            "running there?)"
        ) from None
    return sock


def serve_worker(config: uvicorn.Config) -> None:
    """A worker process: uvicorn serving `config` on a listening socket of its own."""
    import uvicorn

    config.configure_logging()  # a new process: its logging is set up anew, as uvicorn does
    sock = bound_socket(config.host, config.port)
    sock.listen(BACKLOG)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: no traceback
        return
    except SystemExit:
        if not server.started:  # uvicorn exits 1 when it cannot even load the app
            raise SystemExit(STARTUP_FAILURE) from None
        raise
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


class WorkerPool:
    """Runs `count` workers serving `config` until SIGINT or SIGTERM.

    Args:
        config: uvicorn's configuration of one worker; its app must be an import string,
            since each worker is a new process that imports it.
        count: how many workers.
    """

    def __init__(self, config: uvicorn.Config, count: int) -> None:
        if not isinstance(config.app, str):
            raise CommandError("workers import the app: give it as an import string")
        self.config = config
        self.count = count
        self._spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, as uvicorn
        self._stopping = threading.Event()

    def run(self) -> int:
        """Serve until asked to stop; the exit code (3 when a worker could not start).

        Raises:
            CommandError: the address cannot be listened on.
        """
        holder = bound_socket(self.config.host, self.config.port)
        try:
            # With --port 0 the system chose a port: every worker binds that one.
            self.config.port = holder.getsockname()[1]
            logger.info(
                "Started parent process [%d]: %d workers on %s:%d",
                os.getpid(),
                self.count,
                self.config.host,
                self.config.port,
            )
            with self._signals_stop():
                return self._supervise()
        finally:
            holder.close()

    def _supervise(self) -> int:
        workers = [self._start() for _ in range(self.count)]
        code = 0
        try:
            while not self._stopping.wait(CHECK_SECONDS):
                for index, worker in enumerate(workers):
                    if worker.is_alive():
                        continue
                    if worker.exitcode == STARTUP_FAILURE:
                        logger.error("Worker [%s] could not start; stopping.", worker.pid)
                        code = STARTUP_FAILURE
                        self._stopping.set()
                        break
                    logger.warning(
                        "Worker [%s] died (exit code %s); starting another.",
                        worker.pid,
                        worker.exitcode,
                    )
                    workers[index] = self._start()
        finally:
            _stop(workers)
        return code

    def _start(self) -> BaseProcess:
        worker = self._spawn.Process(target=serve_worker, args=(self.config,), daemon=False)
        worker.start()
        return worker

    @contextmanager
    def _signals_stop(self) -> Iterator[None]:
        """SIGINT and SIGTERM stop the pool while it runs; the old handlers come back after."""

        def stop(signum: int, frame: FrameType | None) -> None:
            self._stopping.set()

        previous = {number: signal.signal(number, stop) for number in _STOP_SIGNALS}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop(workers: list[BaseProcess]) -> None:
    """Ask every worker to finish (SIGTERM: uvicorn's graceful shutdown), kill stragglers."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(STOP_SECONDS)
        if worker.is_alive():
            worker.kill()
            worker.join()
