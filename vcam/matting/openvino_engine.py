"""The RVM matting engine on OpenVINO's own API (the ``openvino`` package, the ``[openvino]`` extra).

``OpenVinoEngine.infer(rgb)`` has the contract of :class:`~vcam.matting.engine.MattingEngine`:
one (H, W, 3) uint8 RGB frame of any size in, alpha (h, w) float32 in 0..1 at the model input
size out, the recurrent state carried from call to call (``reset()`` forgets it).

The model is compiled for one input size with every shape static and the downsample ratio
folded into the graph as a constant: measured here, OpenVINO's dynamic-shape kernels cost 20-30 %
more CPU per call than the static ones (docs/performance.md). Static shapes need the recurrent
state at its full shape from the first frame, so ``reset()`` feeds zeros of the shapes the
model returns (found by OpenVINO's shape inference): RVM broadcasts its [1,1,1,1] zero state,
so full-size zeros give the same alpha (checked against ONNX Runtime in tests/test_openvino.py).

``precision`` is ``"f32"`` or ``"bf16"``; bf16 is refused where the CPU plugin does not list it
among its native capabilities (AVX512_BF16 or AMX): OpenVINO would otherwise emulate it, slower.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vcam.errors import ModelError
from vcam.matting import contract
from vcam.matting.engine import (
    BUDGET_SHARE,
    CALIBRATION_LIMIT_S,
    available_cores,
    first_line,
    shrink_frame,
    time_engine,
)

__all__ = ["PRECISIONS", "OpenVinoEngine", "native_precisions", "openvino_version"]

log = logging.getLogger(__name__)
PRECISIONS = ("f32", "bf16")


def _openvino() -> Any:
    # `import openvino` imports its model converter, which imports the openvino-telemetry
    # package, which writes a client id under ~/intel at once. vcam converts nothing and sends
    # nothing: with the package marked absent, OpenVINO uses its own telemetry stub.
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino  # heavy, optional: imported on first use only

    return openvino


def openvino_version() -> str | None:
    """The installed OpenVINO version, or None when the package is not installed."""
    try:
        return str(_openvino().__version__)
    except ImportError:
        return None


def native_precisions(core: Any | None = None) -> tuple[str, ...]:
    """The precisions this CPU runs natively, as OpenVINO's CPU plugin reports them
    (``OPTIMIZATION_CAPABILITIES``: ``FP32`` everywhere, ``BF16`` with AVX512_BF16 or AMX)."""
    core = core or _openvino().Core()
    caps = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return tuple(p for p, cap in (("f32", "FP32"), ("bf16", "BF16")) if cap in caps)


class OpenVinoEngine:
    """RVM on OpenVINO (CPU device), static shapes, recurrent state kept between calls.

    ``threads`` = 0 uses :func:`available_cores`, or, given ``frame_budget_s``, one thread when
    a one-thread inference takes at most 75 % of it and every core otherwise (the rule of
    :class:`~vcam.matting.engine.MattingEngine`); ``thread_choice`` says why.
    """

    runtime = "openvino"
    provider = "openvino-cpu"

    def __init__(
        self,
        model_path: Path,
        *,
        precision: str = "f32",
        threads: int = 0,
        input_size: tuple[int, int] = (384, 216),
        downsample_ratio: float = 0.5,
        frame_budget_s: float | None = None,
    ) -> None:
        try:
            ov = _openvino()
        except ImportError as exc:
            raise ModelError("the openvino runtime is not installed; in the vcam folder: pip install '.[cpu,openvino]'") from exc
        if precision not in PRECISIONS:
            raise ModelError(f"openvino precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.downsample_ratio = float(downsample_ratio)
        self.precision = precision
        self._core = ov.Core()
        if precision not in native_precisions(self._core):
            raise ModelError(f"this CPU has no native {precision} (OpenVINO's CPU capabilities: "
                             + ", ".join(self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
                             + "); use model.precision: f32")
        self._model_path = model_path
        self._model = self._static_model()
        self.thread_choice = "configured" if threads else "all cores"
        cores = threads or available_cores()
        if not threads and frame_budget_s is not None and cores > 1:
            self._compile(1)
            one = self.time_inference(limit_s=CALIBRATION_LIMIT_S)
            within = one <= BUDGET_SHARE * frame_budget_s
            self.thread_choice = (f"automatic: one thread took {one * 1e3:.1f} ms, "
                                  f"{'within' if within else 'more than'} {BUDGET_SHARE:.0%} of the "
                                  f"{frame_budget_s * 1e3:.1f} ms frame time")
            if not within:
                self._compile(cores)
        else:
            self._compile(cores)
        log.info(
            "matting engine: openvino %s %s, %d thread%s (%s), input %dx%d, ratio %.3g",
            (openvino_version() or "").split("-")[0], self.precision, self.threads, "" if self.threads == 1 else "s",
            self.thread_choice, *self.input_size, self.downsample_ratio,
        )
        self.reset()

    def _static_model(self) -> Any:
        """The ONNX model with the ratio folded in and every input shape fixed for ``input_size``."""
        ov = _openvino()
        ops = ov.opset13
        w, h = self.input_size
        try:
            model = self._core.read_model(str(self._model_path))
        except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
            raise ModelError(f"cannot load model {self._model_path}: {first_line(exc)}; "
                             "run 'vcam models fetch' to get a good copy") from exc
        names_in = [p.get_friendly_name() for p in model.get_parameters()]
        names_out = [n for o in model.outputs for n in o.get_names()]
        missing = contract.missing_names(names_in, names_out)
        if missing:
            raise ModelError(f"model {self._model_path} is not a Robust Video Matting model: it lacks "
                             + ", ".join(missing))
        ratio = next(p for p in model.get_parameters() if p.get_friendly_name() == contract.RATIO)
        const = ops.constant(np.array([self.downsample_ratio], np.float32))
        for target in ratio.output(0).get_target_inputs():
            target.replace_source_output(const.output(0))
        model.remove_parameter(ratio)
        # The state shapes for this input, by OpenVINO's shape inference from the [1,1,1,1] start
        # (no compile needed), then every input fixed at its full shape.
        start = list(contract.INITIAL_STATE_SHAPE)
        try:
            model.reshape({contract.SOURCE: [1, 3, h, w], **dict.fromkeys(contract.STATE_IN, start)})
            shapes = [model.output(n).get_partial_shape() for n in contract.STATE_OUT]
            if not all(s.is_static for s in shapes):
                raise RuntimeError("state shapes not inferred: " + ", ".join(str(s) for s in shapes))
            self._state_shapes = [tuple(s.to_shape()) for s in shapes]
            model.reshape({contract.SOURCE: [1, 3, h, w],
                           **{n: list(s) for n, s in zip(contract.STATE_IN, self._state_shapes, strict=True)}})
        except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
            raise ModelError(f"the model cannot run at input {w}x{h} with downsample ratio "
                             f"{self.downsample_ratio:g} ({first_line(exc)}); use a larger "
                             "model.downsample_ratio or model.input_size") from exc
        return model

    def _compile(self, threads: int) -> None:
        self.threads = threads
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": self.precision,
                  "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
        try:
            compiled = self._core.compile_model(self._model, "CPU", config)
        except Exception as exc:
            raise ModelError(f"openvino cannot compile {self._model_path} ({first_line(exc)})") from exc
        self._request = request = compiled.create_infer_request()
        # Zero copy: the frame is written straight into the request's input, and the recurrent
        # state lives in two sets of tensors that take turns as input and output, so that
        # OpenVINO's Python layer copies nothing (it did so with the GIL held: ~1.5 ms a call).
        self._src = request.get_tensor(contract.SOURCE).data
        ov = _openvino()
        self._states = [[ov.Tensor(np.zeros(s, np.float32)) for s in self._state_shapes] for _ in range(2)]
        self._turn = 0

    def time_inference(
        self, runs: int = 8, limit_s: float | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> float:
        """Median wall seconds of one inference (see :meth:`MattingEngine.time_inference`)."""
        return time_engine(self, runs, limit_s, clock)

    def reset(self) -> None:
        """Forget the recurrent state; the next frame is treated as the first of a scene."""
        self._turn = 0
        for tensor in self._states[0]:
            tensor.data[...] = 0
        self.frames_since_reset = 0

    def shrink(self, rgb: np.ndarray) -> np.ndarray:
        """The frame as the model sees it: (h, w, 3) uint8 RGB at the model input size."""
        return shrink_frame(rgb, self.input_size)

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        """Alpha for one frame (any size, or already :meth:`shrink`-ed): (h, w) float32 0..1
        at the model input size."""
        small = self.shrink(rgb)
        np.multiply(small.transpose(2, 0, 1), np.float32(1 / 255), out=self._src[0], casting="unsafe")
        request = self._request
        for names, tensors in ((contract.STATE_IN, self._states[self._turn]),
                               (contract.STATE_OUT, self._states[1 - self._turn])):
            for name, tensor in zip(names, tensors, strict=True):
                request.set_tensor(name, tensor)
        # Nothing passed, outputs shared (not copied); runs on this thread with the GIL released.
        request.infer(share_outputs=True)
        self._turn = 1 - self._turn
        self.frames_since_reset += 1
        # The request writes its next alpha into the same buffer: the caller gets its own copy.
        alpha: np.ndarray = request.get_tensor(contract.ALPHA).data[0, 0].copy()
        return alpha
