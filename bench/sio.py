"""A minimal Engine.IO v4 / Socket.IO v5 client on aiohttp websockets, light enough
for thousands of simulated learners per process.

One `Conn` is one websocket (transport=websocket only, no polling upgrade), speaking to
one namespace. It offers permessage-deflate like a browser (`compress=15`); whether the
hub accepted it is in `Conn.deflate`.

Packets handled: open `0{...}`, ping `2` → pong `3`, close `1`, namespace connect
`40/ns,{auth}` → `40/ns,{sid}` or `44/ns,{error}`, events `42/ns,[id]["name",data]`,
acks `43/ns,id[data]`, namespace disconnect `41/ns,`.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable, Optional

import aiohttp

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class ConnectError(Exception):
    pass


class Conn:
    __slots__ = (
        "ns", "ws", "deflate", "on_event", "on_close", "_next_id", "_acks", "_reader",
        "_prefix_ev", "_prefix_ack", "_connected", "closed", "close_reason", "last_rx", "pings", "last_ping",
        "opened_at",
    )

    def __init__(self, ns: str = "/exam") -> None:
        self.ns = ns
        self.ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self.deflate = False
        #: callback(name, data) for server events (called in the reader task).
        self.on_event: Optional[Callable[[str, Any], None]] = None
        #: callback(reason) when the socket ends without us asking.
        self.on_close: Optional[Callable[[str], None]] = None
        self._next_id = 0
        #: packet id → future or callable(data)
        self._acks: dict[int, Any] = {}
        self._reader: Optional[asyncio.Task] = None
        self._prefix_ev = f"42{ns},"
        self._prefix_ack = f"43{ns},"
        self._connected: Optional[asyncio.Future] = None
        self.closed = False
        self.close_reason = ""
        self.last_rx = 0.0
        self.pings = 0
        self.last_ping = 0.0
        self.opened_at = 0.0

    async def connect(self, session: aiohttp.ClientSession, url: str, auth: dict, timeout: float = 30.0) -> None:
        """Websocket handshake, Engine.IO open, namespace connect with `auth`."""
        ws_url = url.rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await session.ws_connect(
            ws_url, compress=15, autoclose=False, autoping=True, heartbeat=None,
            max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
        )
        self.deflate = bool(getattr(self.ws, "compress", 0))
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type != aiohttp.WSMsgType.TEXT or not msg.data.startswith("0"):
            await self.ws.close()
            raise ConnectError(f"bad open packet: {msg.type} {str(msg.data)[:80]}")
        self.opened_at = time.monotonic()
        loop = asyncio.get_running_loop()
        self._connected = loop.create_future()
        self._reader = asyncio.create_task(self._read())
        await self.ws.send_str(f"40{self.ns}," + _dumps(auth))
        try:
            await asyncio.wait_for(asyncio.shield(self._connected), timeout)
        except BaseException:
            await self.close()
            raise

    async def _read(self) -> None:
        ws = self.ws
        reason = "eof"
        try:
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.last_rx = time.monotonic()
                    self._packet(msg.data)
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    reason = f"ws-close {ws.close_code}"
                    break
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    reason = f"ws-error {ws.exception()!r}"
                    break
        except asyncio.CancelledError:
            reason = "cancelled"
            raise
        except Exception as err:  # noqa: BLE001
            reason = f"reader {err!r}"
        finally:
            self._lost(reason)

    def _lost(self, reason: str) -> None:
        was_closed = self.closed
        self.closed = True
        self.close_reason = self.close_reason or reason
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(ConnectError(reason))
        acks, self._acks = self._acks, {}
        for cb in acks.values():
            if isinstance(cb, asyncio.Future):
                if not cb.done():
                    cb.set_exception(ConnectError(reason))
            else:
                try:
                    cb(None)
                except Exception:  # noqa: BLE001
                    pass
        if not was_closed and self.on_close is not None:
            self.on_close(reason)

    def _packet(self, data: str) -> None:
        if data.startswith(self._prefix_ack):
            body = data[len(self._prefix_ack):]
            cut = body.index("[")
            pid = int(body[:cut])
            cb = self._acks.pop(pid, None)
            if cb is None:
                return
            args = json.loads(body[cut:])
            value = args[0] if args else None
            if isinstance(cb, asyncio.Future):
                if not cb.done():
                    cb.set_result(value)
            else:
                cb(value)
        elif data.startswith(self._prefix_ev):
            body = data[len(self._prefix_ev):]
            cut = body.index("[")
            args = json.loads(body[cut:])
            if self.on_event is not None:
                self.on_event(args[0], args[1] if len(args) > 1 else None)
        elif data == "2":
            self.pings += 1
            self.last_ping = time.monotonic()
            asyncio.ensure_future(self._send_raw("3"))
        elif data.startswith(f"40{self.ns},"):
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(json.loads(data[len(self.ns) + 3:] or "{}"))
        elif data.startswith(f"44{self.ns},"):
            if self._connected is not None and not self._connected.done():
                self._connected.set_exception(ConnectError(data[len(self.ns) + 3:][:200]))
        elif data.startswith(f"41{self.ns}") or data == "1":
            self._lost("server-disconnect")
            asyncio.ensure_future(self.close())

    async def _send_raw(self, text: str) -> None:
        if self.closed or self.ws is None:
            return
        try:
            await self.ws.send_str(text)
        except Exception as err:  # noqa: BLE001
            self._lost(f"send {err!r}")

    def _packet_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def emit_cb(self, event: str, data: Any, callback: Callable[[Any], None]) -> None:
        """Send an event whose ack calls `callback(value)` (None if the socket is lost)."""
        if self.closed:
            callback(None)
            return
        pid = self._packet_id()
        self._acks[pid] = callback
        await self._send_raw(f"42{self.ns},{pid}" + _dumps([event, data]))

    async def call(self, event: str, data: Any, timeout: float = 30.0) -> Any:
        """Send an event and wait for its ack."""
        if self.closed:
            raise ConnectError(self.close_reason or "closed")
        pid = self._packet_id()
        fut = asyncio.get_running_loop().create_future()
        self._acks[pid] = fut
        await self._send_raw(f"42{self.ns},{pid}" + _dumps([event, data]))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._acks.pop(pid, None)

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            try:
                await self.ws.close()
            except Exception:  # noqa: BLE001
                pass
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        self.closed = True
