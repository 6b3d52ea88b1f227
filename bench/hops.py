"""Where an ack's time goes: the learners' send and ack times joined with the hub's stamps.

    bench/exam_load.py --hub-launcher bench/hub_debug.py --hub-env HUB_DEBUG_HOPS=/tmp/hops.jsonl \\
        --ack-keys /tmp/keys.json --json /tmp/run.json ...
    .venv/bin/python bench/hops.py --hub /tmp/hops.jsonl --keys /tmp/keys.json --run /tmp/run.json

Each acknowledged answer and submission of the burst is cut into six hops (wall clock;
the learners and the hub share the machine's clock):

  in        the learner's emit → the hub read its frame  (client send, kernel, the hub's reader waiting for the loop)
  dispatch  frame read → the writer's save entered        (decode, the handler's greenlet, checks)
  writer    save entered → its batch committed            (the lane's queue, the batch's round trips)
  wake      committed → the handler resumed               (the waiter waiting for the loop)
  out       handler resumed → ack frame written           (encode, the socket's send queue and its writer greenlet)
  back      ack frame written → the learner's callback    (kernel, the learner's own loop)

Per second of the burst: how many, the p99 of the whole, and for the slowest 1 % of that
second the mean of each hop (where the tail's time goes). Then the same over the burst.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hubctl import pct

HOPS = ("in", "dispatch", "writer", "wake", "out", "back")


def join(hub_lines: list[list], keys: list[list], t0: float, t1: float) -> list[dict]:
    hub = {(r[0], r[1]): r for r in hub_lines if r[3] and r[4] and r[5] and r[6]}
    out = []
    for aid, seq, sent, acked in keys:
        if not (t0 <= sent < t1):
            continue
        r = hub.get((aid, seq))
        if r is None or not (sent - 1.0 <= r[2] <= acked + 1.0):  # a resend's stamps belong to another send
            continue
        _, _, read, enter, committed, woken, written = r
        out.append({
            "kind": "submit" if seq == -1 else "answer", "second": int(sent - t0), "total": acked - sent,
            "in": read - sent, "dispatch": enter - read, "writer": committed - enter, "wake": woken - committed,
            "out": written - woken, "back": acked - written,
        })
    return out


def describe(items: list[dict]) -> dict:
    if not items:
        return {"n": 0}
    p99 = pct([i["total"] for i in items], 0.99)
    tail = [i for i in items if i["total"] >= p99] or items
    return {
        "n": len(items), "p99_ms": round(p99 * 1000, 1),
        "hop_p99_ms": {h: round(pct([i[h] for i in items], 0.99) * 1000, 1) for h in HOPS},
        "tail_mean_ms": {h: round(sum(i[h] for i in tail) / len(tail) * 1000, 1) for h in HOPS},
    }


def analyse(hub_lines: list[list], keys: list[list], t0: float, t1: float) -> dict:
    items = join(hub_lines, keys, t0, t1)
    seconds = sorted({i["second"] for i in items})
    return {
        "joined": len(items), "keys_in_window": sum(1 for k in keys if t0 <= k[2] < t1),
        "burst": {kind: describe([i for i in items if i["kind"] == kind]) for kind in ("answer", "submit")},
        "per_second": [{"s": s, **{kind: describe([i for i in items if i["second"] == s and i["kind"] == kind])
                                   for kind in ("answer", "submit")}} for s in seconds],
    }


def table(res: dict) -> str:
    rows = ["| s | kind | n | p99 ms | tail: " + " | ".join(HOPS) + " |", "|" + "---|" * (4 + len(HOPS))]
    for sec in res["per_second"]:
        for kind in ("answer", "submit"):
            d = sec[kind]
            if d["n"]:
                rows.append(f"| {sec['s']} | {kind} | {d['n']} | {d['p99_ms']} | "
                            + " | ".join(str(d["tail_mean_ms"][h]) for h in HOPS) + " |")
    for kind in ("answer", "submit"):
        d = res["burst"][kind]
        if d["n"]:
            rows.append(f"| all | {kind} | {d['n']} | {d['p99_ms']} | "
                        + " | ".join(str(d["tail_mean_ms"][h]) for h in HOPS) + " |")
            rows.append(f"| all, each hop's own p99 | {kind} | | | "
                        + " | ".join(str(d["hop_p99_ms"][h]) for h in HOPS) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hub", required=True, help="HUB_DEBUG_HOPS file (JSON lines)")
    p.add_argument("--keys", required=True, help="exam_load --ack-keys file")
    p.add_argument("--run", required=True, help="exam_load --json file (for the burst's bounds)")
    p.add_argument("--json", default=None, help="write the analysis here")
    args = p.parse_args(argv)
    hub_lines = [json.loads(line) for line in Path(args.hub).read_text().splitlines() if line.strip()]
    keys = json.loads(Path(args.keys).read_text())
    wall = json.loads(Path(args.run).read_text())["wall"]
    res = analyse(hub_lines, keys, wall["burst_start"], wall["deadline"])
    print(f"joined {res['joined']} of {res['keys_in_window']} acks sent in the burst")
    print(table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
