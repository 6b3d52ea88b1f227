#!/usr/bin/env bash
# Fetch the YuNet face-detection model (Apache-2.0, opencv_zoo) into instance/models/ and
# check its checksum. The project does not commit it. Without internet (closed networks)
# this step says so and the hub runs on OpenCV's bundled Haar cascade, with approximate
# counts; copy the file there by hand to get exact ones (see proctor/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
DEST=${DIEMCAU_FACE_MODEL:-instance/models/face_detection_yunet_2023mar.onnx}
SHA=8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4
URL=${DIEMCAU_FACE_MODEL_URL:-https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx}

check() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA" ]; }
if check "$DEST"; then exit 0; fi
mkdir -p "$(dirname "$DEST")"
tmp=$(mktemp)
if curl -fsSL --max-time 60 -o "$tmp" "$URL" && check "$tmp"; then
  mv "$tmp" "$DEST"
  echo "face model: $DEST (checksum ok)"
else
  rm -f "$tmp"
  echo "face model: not fetched (no internet or checksum mismatch); snapshots use the approximate Haar detector" >&2
fi
exit 0
