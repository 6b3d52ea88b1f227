"""Camera analysis benchmark: snapshots analysed per second per core, and how right the counts are.

Throughput is `proctor.analyse` end to end (JPEG decode + face detection + health and
history checks), one thread (`cv2.setNumThreads(1)`), on the 26 real photographs centre-
cropped and resized to 640×480 and 1280×720 and encoded as JPEG (quality 85), each
detector setting run `--runs` times interleaved; the median run is reported, both per
wall-clock second and per CPU second of this process (the machine is shared: CPU time is
what one core delivers when it is not being taken by others). Accuracy is measured on the
original photographs against labels.csv.

    .venv/bin/python bench/proctor_bench.py [--runs 3] [--shared ../shared] [--json out.json]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from proctor import FaceDetector, HaarDetector, SiteHistory, YuNetDetector, analyse, one_face_check  # noqa: E402

SIZES = [(640, 480), (1280, 720)]


class NoFaces(FaceDetector):
    """Decode + health only, to show what the detector costs."""

    name = "none (decode + health)"

    def detect(self, image_bgr):
        return []


def settings(models: Path) -> list[tuple[str, str, FaceDetector]]:
    """(label, setting, detector) for every configuration measured."""
    out: list[tuple[str, str, FaceDetector]] = []
    for label, file in (("YuNet-s", "yunet_s_640_640.onnx"), ("YuNet-n", "yunet_n_640_640.onnx")):
        path = models / file
        if not path.is_file():
            print(f"# {path} missing: {label} skipped", file=sys.stderr)
            continue
        out.append((label, "640 (default)", YuNetDetector(path)))
        out.append((label, "320 (webcam selfie)", YuNetDetector(path, input_size=320)))
        out.append((label, "1280, upscale", YuNetDetector(path, input_size=1280, upscale=True)))
        out.append((label, "1280, upscale, 2×2 tiles", YuNetDetector(path, input_size=1280, upscale=True, tiles=2)))
    out.append(("Haar alt2", "640 (default)", HaarDetector()))
    out.append(("Haar alt2", "1280, upscale", HaarDetector(input_size=1280, upscale=True)))
    out.append(("none", "decode + health only", NoFaces()))
    return out


def crop_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    target = width / height
    if w / h > target:
        cw = round(h * target)
        image = image[:, (w - cw) // 2 : (w - cw) // 2 + cw]
    else:
        ch = round(w / target)
        image = image[(h - ch) // 2 : (h - ch) // 2 + ch]
    interp = cv2.INTER_AREA if image.shape[1] > width else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def snapshots(faces: Path, rows: list[dict], size: tuple[int, int]) -> list[bytes]:
    out = []
    for r in rows:
        image = cv2.imread(str(faces / r["file"]), cv2.IMREAD_COLOR)
        frame = crop_resize(image, *size)
        out.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return out


def one_run(detector: FaceDetector, frames: list[bytes]) -> tuple[float, float]:
    """(snapshots per wall second, per CPU second) analysing frames as one site's stream."""
    history = SiteHistory()
    analyse(frames[0], detector, history, now=0)  # warm-up (network allocation)
    wall, cpu = time.perf_counter(), time.process_time()
    for i, data in enumerate(frames):
        history = analyse(data, detector, history, now=float(i * 10)).history
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(frames) / wall, len(frames) / cpu


def accuracy(detector: FaceDetector, faces: Path, rows: list[dict]) -> dict:
    exact, errors, wrong = 0, [], []
    group_found = group_total = 0
    for r in rows:
        lo, hi = int(r["faces"]), int(r["faces_max"])
        n = analyse((faces / r["file"]).read_bytes(), detector).headcount
        exact += lo <= n <= hi
        errors.append(0 if lo <= n <= hi else min(abs(n - lo), abs(n - hi)))
        if not lo <= n <= hi:
            wrong.append(f"{r['file']} {lo}→{n}")
        if lo >= 10:
            group_found += min(n, hi)
            group_total += lo
    portraits = [r for r in rows if r["faces"] == r["faces_max"] == "1"]
    empty = [r for r in rows if r["faces_max"] == "0"]
    selfie_ok = sum(one_face_check((faces / r["file"]).read_bytes(), detector)[0] for r in portraits)
    empty_ok = sum(not one_face_check((faces / r["file"]).read_bytes(), detector)[0] for r in empty)
    return {
        "exact": exact,
        "photos": len(rows),
        "mae": statistics.fmean(errors),
        "group_found": group_found,
        "group_total": group_total,
        "selfie_ok": selfie_ok,
        "portraits": len(portraits),
        "empty_ok": empty_ok,
        "empty": len(empty),
        "wrong": wrong,
    }


def dense_rooms(detector: FaceDetector, faces: Path) -> list[tuple[str, int, int, int]]:
    """The 52-person class photo repeated side by side and sent as a 1280-px-wide frame:
    faces shrink from ~21 px (1×) to ~10 px (2×) and ~7 px (3×) at 640 px."""
    photo = cv2.imread(str(faces / "ulfd_1.jpg"), cv2.IMREAD_COLOR)
    out = []
    for copies in (1, 2, 3):
        room = np.hstack([photo] * copies)
        h, w = room.shape[:2]
        frame = cv2.resize(room, (1280, round(h * 1280 / w)), interpolation=cv2.INTER_AREA if w > 1280 else cv2.INTER_LINEAR)
        data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        a = analyse(data, detector)
        median_px = int(np.median([f.box[2] for f in a.faces]) * 640 / 1280) if a.faces else 0
        out.append((f"{copies}× ({frame.shape[1]}×{frame.shape[0]})", 52 * copies, a.headcount, median_px))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    faces, models = args.shared / "faces", args.shared / "models"
    with (faces / "labels.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))

    configs = settings(models)
    frames = {size: snapshots(faces, rows, size) for size in SIZES}
    load_before = os.getloadavg()
    rates: dict[tuple[int, int, tuple[int, int]], list[tuple[float, float]]] = {}
    for run in range(args.runs):  # interleaved, so a noisy minute hits every setting alike
        for i, (label, setting, detector) in enumerate(configs):
            for size in SIZES:
                rates.setdefault((i, run, size), [])
                rates[(i, run, size)].append(one_run(detector, frames[size]))
                print(f"# run {run + 1}/{args.runs} {label} {setting} {size[0]}×{size[1]}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    results = []
    for i, (label, setting, detector) in enumerate(configs):
        entry = {"detector": label, "setting": setting, "name": detector.name}
        for size in SIZES:
            runs = [rates[(i, run, size)][0] for run in range(args.runs)]
            entry[f"{size[0]}x{size[1]}"] = {
                "wall_per_s": statistics.median(r[0] for r in runs),
                "cpu_per_s": statistics.median(r[1] for r in runs),
                "runs_wall": [round(r[0], 1) for r in runs],
            }
        if not isinstance(detector, NoFaces):
            entry["accuracy"] = accuracy(detector, faces, rows)
            entry["dense_rooms"] = dense_rooms(detector, faces)
        results.append(entry)

    machine = {
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "runs": args.runs,
        "snapshots_per_run": len(rows),
    }
    print(markdown(results, machine))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=1, ensure_ascii=False))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(results: list[dict], machine: dict) -> str:
    lines = [
        f"Machine: {machine['cpus']} cores ({machine['cpu']}), Python {machine['python']}, OpenCV {machine['opencv']}; "
        f"load average {machine['load_before'][0]} before, {machine['load_after'][0]} after; "
        f"median of {machine['runs']} runs of {machine['snapshots_per_run']} snapshots each.",
        "",
        "| detector | setting | 640×480 /s (wall) | 640×480 /s (CPU) | 1280×720 /s (wall) | 1280×720 /s (CPU) | exact count | MAE | faces in groups of 10+ | one face on portraits | no-person photos refused |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in results:
        a, b = e["640x480"], e["1280x720"]
        acc = e.get("accuracy")
        quality = (
            f"{acc['exact']}/{acc['photos']} ({100 * acc['exact'] / acc['photos']:.0f} %) | {acc['mae']:.2f} | "
            f"{acc['group_found']}/{acc['group_total']} | {acc['selfie_ok']}/{acc['portraits']} | {acc['empty_ok']}/{acc['empty']}"
            if acc
            else "– | – | – | – | –"
        )
        lines.append(
            f"| {e['detector']} | {e['setting']} | {a['wall_per_s']:.1f} | {a['cpu_per_s']:.1f} | "
            f"{b['wall_per_s']:.1f} | {b['cpu_per_s']:.1f} | {quality} |"
        )
    wrong = [f"{e['detector']} {e['setting']}: {', '.join(e['accuracy']['wrong']) or 'none'}" for e in results if "accuracy" in e]
    lines += ["", "Counts that missed:", *[f"- {w}" for w in wrong]]
    dense = [e for e in results if "dense_rooms" in e]
    if dense:
        names = [name for name, *_ in dense[0]["dense_rooms"]]
        lines += [
            "",
            "Dense rooms (the 52-person class photo side by side, sent as a 1280-px-wide JPEG; "
            "faces found / present, and the median face width at 640 px):",
            "",
            "| detector | setting | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for e in dense:
            cells = [f"{found}/{present} ({px} px)" for _, present, found, px in e["dense_rooms"]]
            lines.append(f"| {e['detector']} | {e['setting']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
