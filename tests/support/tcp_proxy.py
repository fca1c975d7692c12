"""A loopback TCP proxy that injects faults between the service and a real server.

Modes: ``pass`` forwards bytes; ``reset`` closes new and existing connections at once;
``blackhole`` accepts and reads but never answers (a hung server or a dropped route);
``stall`` is ``blackhole`` that keeps the connections already open, which stop answering too
(a server or proxy that stalls: the peer's kernel still acknowledges every byte and keepalive);
``delay`` forwards after ``delay`` seconds per chunk.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Self


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.delay = 0.0
        self.connections = 0  # accepted client connections, all modes
        self._switch: tuple[int, str] | None = None
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def set_mode(self, mode: str) -> None:
        assert mode in ("pass", "reset", "blackhole", "stall", "delay")
        self.mode = mode
        if mode in ("reset", "blackhole"):
            self._drop_all()

    def switch_after(self, connections: int, mode: str) -> None:
        """Serve the next ``connections`` new connections as now, then switch to ``mode``:
        e.g. a database that answers a process's startup check and is gone for what follows."""
        assert mode in ("pass", "reset", "blackhole", "stall", "delay")
        self._switch = (self.connections + connections, mode)

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
        for s in sockets:
            # A close alone leaves the socket open while a pipe thread is blocked in recv on it
            # (the kernel keeps it for that call): the peer then waited on an open connection
            # that never answered. The shutdown wakes that recv, and the close resets.
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            try:
                s.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self._switch is not None and self.connections > self._switch[0]:
                self.mode, self._switch = self._switch[1], None
            if self.mode == "reset":
                client.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                client.close()
                continue
            if self.mode in ("blackhole", "stall"):
                with self._lock:
                    self._open.append(client)
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.extend((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _swallow(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while client.recv(65536):
                pass

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.mode in ("blackhole", "stall"):
                    continue
                if self.mode == "delay" and self.delay:
                    time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        self._drop_all()
        self._thread.join(timeout=2)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
