"""The hub's Socket.IO managers keep an index of each socket's rooms: the same rooms as
python-socketio's own manager after any sequence of joins, leaves, closes and
disconnects, and a disconnect that leaves only the socket's own rooms."""
from __future__ import annotations

import random

import pytest
import socketio

from server.core.sockets import IndexedManager, IndexedRedisManager, client_manager


def _pair():
    managers = []
    for cls in (socketio.Manager, IndexedManager):
        m = cls()
        m.set_server(socketio.Server(async_mode="threading"))
        m.initialize()
        managers.append(m)
    return managers


@pytest.mark.parametrize("seed", range(8))
def test_the_index_gives_python_socketios_rooms_after_any_sequence(seed):
    rng = random.Random(seed)
    plain, ours = _pair()
    live: list[tuple[str, str, str]] = []  # (namespace, plain sid, our sid)
    n_eio = 0
    for _ in range(1500):
        op = rng.random()
        if op < 0.3 or not live:
            ns = rng.choice(["/exam", "/board"])
            n_eio += 1
            live.append((ns, plain.connect(f"e{n_eio}", ns), ours.connect(f"e{n_eio}", ns)))
        elif op < 0.6:
            ns, a, b = rng.choice(live)
            room = rng.choice(["exam:1", "exam:2", f"attempt:{rng.randint(1, 30)}", "board:1"])
            plain.enter_room(a, ns, room)
            ours.enter_room(b, ns, room)
        elif op < 0.75:
            ns, a, b = rng.choice(live)
            room = rng.choice(["exam:1", f"attempt:{rng.randint(1, 30)}", "board:1", "never-joined"])
            plain.leave_room(a, ns, room)
            ours.leave_room(b, ns, room)
        elif op < 0.8:
            ns = rng.choice(["/exam", "/board"])
            room = rng.choice(["exam:2", "board:1", f"attempt:{rng.randint(1, 30)}"])
            plain.close_room(room, ns)
            ours.close_room(room, ns)
        else:
            ns, a, b = live.pop(rng.randrange(len(live)))
            plain.disconnect(a, ns)
            ours.disconnect(b, ns)
        # the sids differ (random ids); compare by the engine.io sid each maps to
        assert _by_eio(plain) == _by_eio(ours)
    for ns, a, b in live:
        # the same rooms, the socket's own room (named by its sid) aside
        assert sorted(r if r != a else "own" for r in plain.get_rooms(a, ns)) == \
            sorted(r if r != b else "own" for r in ours.get_rooms(b, ns))
    for ns, a, b in live:
        plain.disconnect(a, ns)
        ours.disconnect(b, ns)
    assert plain.rooms == {} and ours.rooms == {}
    assert ours.rooms_of == {}  # nothing left behind in the index either


def _by_eio(m):
    """Each namespace's rooms as sets of engine.io sids; a socket's own room by its eio sid."""
    out = {}
    for ns, rooms in m.rooms.items():
        own = rooms.get(None, {})
        for room, members in rooms.items():
            key = ("own", own[room]) if room in own else room
            out[(ns, key)] = frozenset(members.values())
    return out


def test_a_disconnect_leaves_every_room_of_the_socket_and_no_other():
    _, m = _pair()
    a = m.connect("ea", "/exam")
    b = m.connect("eb", "/exam")
    for sid, attempt in ((a, "attempt:1"), (b, "attempt:2")):
        m.enter_room(sid, "/exam", "exam:1")
        m.enter_room(sid, "/exam", attempt)
    assert m.get_rooms(a, "/exam") == [a, "exam:1", "attempt:1"]
    m.disconnect(a, "/exam")
    assert set(m.rooms["/exam"]) == {None, b, "exam:1", "attempt:2"}
    assert dict(m.rooms["/exam"]["exam:1"]) == {b: "eb"}
    assert m.get_rooms(a, "/exam") == []


def test_the_hub_uses_the_indexed_managers(app):
    from server.extensions import socketio as ext

    assert isinstance(ext.server.manager, IndexedManager)
    redis = client_manager("redis://127.0.0.1:6379/0")
    assert isinstance(redis, IndexedRedisManager) and redis.channel == "flask-socketio"
    assert isinstance(client_manager(None), IndexedManager)
