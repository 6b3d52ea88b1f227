"""Summarise a py-spy raw profile (`exam_load.py --py-spy ... --keep-log F` writes F.spy.txt).

    .venv/bin/python bench/spy_summary.py F.spy.txt [--top 30] [--under answer.save]

Prints where the samples were: by the frame they ended in (self) and by every frame on
their stack (inclusive), each as a share of all samples, and by top-level area (which
library's code the sample ended in). `--under S` keeps only the stacks with a frame
containing S.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter

AREAS = [
    ("psycopg2 / database", ("psycopg2", "sqlalchemy")),
    ("gevent / greenlets", ("gevent/", "greenlet")),
    ("websocket frames", ("geventwebsocket", "websocket")),
    ("engine.io", ("engineio/",)),
    ("socket.io", ("socketio/",)),
    ("flask / werkzeug", ("flask/", "werkzeug/", "flask_")),
    ("json", ("json/",)),
    ("hub code", ("server/", "proctor/")),
]


def parse(path: str, under: str | None) -> list[tuple[list[str], int]]:
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            m = re.match(r"^(.*) (\d+)$", line)
            if not m:
                continue
            frames = m.group(1).split(";")
            if under and not any(under in f for f in frames):
                continue
            rows.append((frames, int(m.group(2))))
    return rows


def area(frame: str) -> str:
    for name, keys in AREAS:
        if any(k in frame for k in keys):
            return name
    return "other"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--under", default=None, help="only stacks with a frame containing this")
    args = p.parse_args()
    rows = parse(args.raw, args.under)
    total = sum(n for _, n in rows) or 1
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for frames, n in rows:
        own[frames[-1]] += n
        areas[area(frames[-1])] += n
        for f in set(frames):
            incl[f] += n
    print(f"{total} samples" + (f" under {args.under!r}" if args.under else ""))
    print("\n== by area (frame the sample ended in) ==")
    for name, n in areas.most_common():
        print(f"{100 * n / total:6.1f}%  {name}")
    print(f"\n== self (top {args.top}) ==")
    for f, n in own.most_common(args.top):
        print(f"{100 * n / total:6.1f}%  {f}")
    print(f"\n== inclusive (top {args.top}) ==")
    for f, n in incl.most_common(args.top):
        print(f"{100 * n / total:6.1f}%  {f}")


if __name__ == "__main__":
    main()
