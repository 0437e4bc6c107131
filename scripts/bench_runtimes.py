#!/usr/bin/env python3
"""CPU ms per model call of each matting runtime at each input size, interleaved in one run.

    .venv/bin/python scripts/bench_runtimes.py --clip CLIPS/comp-p_09ba26b4/input.mp4 \\
        --runtimes onnxruntime-f32,openvino-f32,openvino-bf16 --rounds 3

The clip's first 60 frames are shrunk to each size once; every runtime then runs them in
turn, one intra-op thread, recurrent state carried (reset at the start of each pass), for
``--rounds`` rounds (every runtime once per round), reporting process CPU ms per call for
each round and the alpha difference against the first runtime of the list (max and mean
absolute, same frames, same state history). ``ovep-f32`` / ``ovep-bf16`` are ONNX Runtime's
OpenVINO execution provider (the ``onnxruntime-openvino`` package, which replaces
``onnxruntime``; run this file with that environment's Python, vcam installed there with
``--no-deps``). ``--model`` runs another ONNX file (e.g. a quantised one) as ``*-alt`` rows. ``--contend``
runs every pass a second time beside a pure-Python thread that wants the GIL all the time (as
the pipeline's output and capture threads do, part of the time) and reports wall ms per call
too: an engine that holds the GIL around its call, or hands it back and forth, shows it there.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vcam.matting import contract
from vcam.matting.choice import Candidate, open_engine
from vcam.matting.engine import shrink_frame
from vcam.matting.models import default_model_dir, ensure_model


class _Ovep:
    """RVM on ONNX Runtime's OpenVINO execution provider (dynamic shapes, ratio as an input)."""

    def __init__(self, model: Path, size: tuple[int, int], precision: str) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
        opts.log_severity_level = 3
        po: dict[str, str] = {"device_type": "CPU", "num_of_threads": "1"}
        if precision == "bf16":
            po["load_config"] = json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": "bf16"}})
        else:
            po["precision"] = "FP32"
        self._s = ort.InferenceSession(str(model), opts, providers=[("OpenVINOExecutionProvider", po)])
        self.input_size = size
        self.reset()

    def reset(self) -> None:
        self._state = [np.zeros(contract.INITIAL_STATE_SHAPE, np.float32)] * 4

    def infer(self, small: np.ndarray) -> np.ndarray:
        src = (small.transpose(2, 0, 1)[None] / 255).astype(np.float32)
        feeds = {contract.SOURCE: src, contract.RATIO: np.array([0.5], np.float32),
                 **dict(zip(contract.STATE_IN, self._state, strict=True))}
        pha, *self._state = self._s.run([contract.ALPHA, *contract.STATE_OUT], feeds)
        out: np.ndarray = pha[0, 0]
        return out


def _open(name: str, model: Path, alt: Path | None, size: tuple[int, int]) -> Any:
    path = model
    if name.endswith("-alt"):
        if alt is None:
            raise SystemExit(f"{name} needs --model")
        name, path = name[: -len("-alt")], alt
    if name.startswith("ovep-"):
        return _Ovep(path, size, name.split("-")[1])
    runtime, precision = name.split("-")
    return open_engine(Candidate(runtime, precision), path, input_size=size, downsample_ratio=0.5, threads=1)


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(2000))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", type=Path, required=True)
    ap.add_argument("--runtimes", default="onnxruntime-f32,openvino-f32,openvino-bf16")
    ap.add_argument("--sizes", default="384x216,448x252,512x288")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", type=Path, help="another ONNX file, run by the *-alt runtimes")
    ap.add_argument("--contend", action="store_true", help="also run beside a GIL-bound Python thread")
    args = ap.parse_args()
    model = ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())
    cap = cv2.VideoCapture(str(args.clip))
    frames = []
    while len(frames) < 60:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    names = args.runtimes.split(",")
    for spec in args.sizes.split(","):
        w, h = (int(v) for v in spec.split("x"))
        small = [shrink_frame(f, (w, h)) for f in frames]
        engines = {}
        for n in names:
            t0 = time.perf_counter()
            engines[n] = _open(n, model, args.model, (w, h))
            engines[n].open_s = time.perf_counter() - t0
        cpu: dict[str, list[float]] = {n: [] for n in names}
        contended: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        alphas: dict[str, list[np.ndarray]] = {}
        for r in range(args.rounds):
            for n, e in engines.items():
                e.reset()
                e.infer(small[0])
                e.reset()
                c0 = time.process_time()
                out = [e.infer(s).copy() for s in small]
                cpu[n].append(round((time.process_time() - c0) / len(small) * 1e3, 2))
                if r == 0:
                    alphas[n] = out
                if args.contend:
                    stop = threading.Event()
                    spinner = threading.Thread(target=_spin, args=(stop,))
                    spinner.start()
                    e.reset()
                    c0, w0 = time.process_time(), time.perf_counter()
                    for s in small:
                        e.infer(s)
                    c1, w1 = time.process_time(), time.perf_counter()
                    stop.set()
                    spinner.join()
                    # process CPU includes the spinner's: report it with the wall time, per call
                    contended[n].append((round((c1 - c0) / len(small) * 1e3, 1), round((w1 - w0) / len(small) * 1e3, 1)))
        ref = alphas[names[0]]
        for n in names:
            mx = max(float(np.abs(a - b).max()) for a, b in zip(alphas[n], ref, strict=True))
            mean = float(np.mean([np.abs(a - b).mean() for a, b in zip(alphas[n], ref, strict=True)]))
            print(f"{w}x{h} {n:18s} open {engines[n].open_s:.2f} s  CPU ms/call {cpu[n]}  "
                  f"vs {names[0]}: max |d| {mx:.5f}, mean |d| {mean:.6f}", flush=True)
            if args.contend:
                print(f"{w}x{h} {n:18s} beside a GIL-bound thread: (process CPU, wall) ms/call {contended[n]}",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
