#!/usr/bin/env python3
"""Write an int8 copy of the RVM model: its backbone's convolutions statically quantised (an
experiment of issue 12, not used by vcam; docs/performance.md, "int8 static quantisation").

    python3 -m venv /tmp/qenv && /tmp/qenv/bin/pip install onnx onnxruntime opencv-python-headless
    /tmp/qenv/bin/python scripts/quantize_int8.py --model ~/.cache/vcam/models/rvm_mobilenetv3_fp32.onnx \\
        --clips CLIPS -o /tmp/rvm-int8.onnx
    .venv/bin/python scripts/bench_runtimes.py --clip CLIPS/comp-p_09ba26b4/input.mp4 \\
        --runtimes openvino-bf16,openvino-bf16-alt --model /tmp/rvm-int8.onnx

It needs the ``onnx`` package, which vcam does not depend on (hence its own environment).
The model is converted to opset 13 (per-channel QuantizeLinear), then ONNX Runtime's
``quantize_static`` writes QDQ pairs around the first 64 Conv nodes (MobileNetV3, the
backbone: Conv_8 ... Conv_166) less ``--keep-first`` / ``--keep-last`` of them: per-channel
int8 weights, uint8 activations, MinMax ranges from every 10th of the first 50 frames of each
``comp-*`` clip, shrunk to 384x216 (ratio 0.5). The LR-ASPP, the decoder with its ConvGRU
gates and the refiner stay in float. The backbone sees no recurrent state, so calibrating
with the zero state is exact for it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

BACKBONE_CONVS = 64  # the first Conv nodes of the graph: MobileNetV3's


def calibration_frames(clips: Path, size: tuple[int, int] = (384, 216), every: int = 10, first: int = 50) -> list[np.ndarray]:
    """(1, 3, h, w) float32 0..1 RGB frames of the comp clips, for the activation ranges."""
    frames = []
    for clip in sorted(clips.glob("comp-*/input.mp4")):
        cap = cv2.VideoCapture(str(clip))
        for i in range(first):
            ok, bgr = cap.read()
            if not ok:
                break
            if i % every == 0:
                rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, interpolation=cv2.INTER_AREA)
                frames.append(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], np.float32) / 255)
        cap.release()
    return frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="RVM ONNX file (default: vcam's cached model)")
    ap.add_argument("--clips", type=Path, required=True, help="the built evaluation clips (evaldata/build.py)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--keep-first", type=int, default=0, help="backbone convolutions left in float at the start")
    ap.add_argument("--keep-last", type=int, default=0, help="... and at the end")
    args = ap.parse_args(argv)
    try:
        import onnx
        from onnx import version_converter
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError as exc:
        print(f"{exc}: this script needs onnx and onnxruntime (see its docstring)", file=sys.stderr)
        return 1
    model = args.model
    if model is None:
        from vcam.matting.models import default_model_dir

        model = default_model_dir() / "rvm_mobilenetv3_fp32.onnx"
    frames = calibration_frames(args.clips)
    if not frames:
        print(f"{args.clips}: no comp-*/input.mp4 clips", file=sys.stderr)
        return 1
    graph = version_converter.convert_version(onnx.load(str(model)), 13)
    convs = [n.name for n in graph.graph.node if n.op_type == "Conv"][:BACKBONE_CONVS]
    nodes = convs[args.keep_first : BACKBONE_CONVS - args.keep_last]
    print(f"{len(frames)} calibration frames; quantising {len(nodes)} of {BACKBONE_CONVS} backbone convolutions ({nodes[0]} ... {nodes[-1]})")

    class Frames(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it = iter(frames)

        def get_next(self) -> dict[str, Any] | None:
            f = next(self._it, None)
            if f is None:
                return None
            zero = np.zeros((1, 1, 1, 1), np.float32)
            return {"src": f, "r1i": zero, "r2i": zero, "r3i": zero, "r4i": zero,
                    "downsample_ratio": np.array([0.5], np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        op13 = Path(tmp) / "op13.onnx"
        onnx.save(graph, str(op13))
        quantize_static(str(op13), str(args.output), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, op_types_to_quantize=["Conv"],
                        nodes_to_quantize=nodes, calibrate_method=CalibrationMethod.MinMax)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
