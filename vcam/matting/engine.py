"""The RVM matting engine on ONNX Runtime: provider choice, threads, recurrent state.

``MattingEngine.infer(rgb)`` takes one (H, W, 3) uint8 RGB frame of any size, resizes it
to the model input size, runs RVM with the recurrent state of the previous frames, and
returns alpha as (h, w) float32 in 0..1 at the model input size. Frames must arrive in time
order; call ``reset()`` when the scene is not a continuation of the last frame.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from vcam.errors import ModelError
from vcam.matting import contract

__all__ = [
    "BUDGET_SHARE",
    "CALIBRATION_LIMIT_S",
    "PROVIDER_NAMES",
    "MattingEngine",
    "available_cores",
    "first_line",
    "onnxruntime_version",
    "provider_options",
    "shrink_frame",
    "time_engine",
]

log = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_SHORT = {v: k for k, v in PROVIDER_NAMES.items()}
# Automatic threads: one thread when its inference takes at most this share of the frame time.
# Measured on 2 cores at 720p, the p95 latency was the one-thread inference time plus 5-9 ms
# (compositing, hand-offs, jitter): 75 % of 33.3 ms keeps it within the frame time.
BUDGET_SHARE = 0.75
# Choosing the threads times one-thread inferences for at most about this long (plus the one
# under way), so a slow model input delays start-up by seconds, not by ten inferences, and
# Ctrl-C is answered after the current inference.
CALIBRATION_LIMIT_S = 2.0


def available_cores() -> int:
    """CPU cores this process may run on (affinity/cgroup-aware where the OS says so)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (the runtimes' messages run to many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def onnxruntime_version() -> str:
    from vcam.matting.runtime import import_onnxruntime

    return str(import_onnxruntime().__version__)  # a clear error when not installed


class _Timed(Protocol):
    input_size: tuple[int, int]

    def infer(self, rgb: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


def time_engine(
    engine: _Timed, runs: int = 8, limit_s: float | None = None, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median wall seconds of one ``engine.infer`` at its input size (after two warm-up runs);
    the recurrent state is reset afterwards. With ``limit_s``, no inference starts once that
    long has passed: the median of the timed runs so far, or the last warm-up run's time if
    none was timed yet (an upper bound: warm-up runs are the slowest)."""
    w, h = engine.input_size
    probe = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    engine.reset()
    times: list[float] = []
    start, last = clock(), 0.0
    for i in range(runs + 2):
        t0 = clock()
        engine.infer(probe)
        t1 = clock()
        last = t1 - t0
        if i >= 2:
            times.append(last)
        if limit_s is not None and t1 - start >= limit_s:
            break
    engine.reset()
    return float(np.median(times)) if times else last


def provider_options(chosen: Sequence[str], trt_cache: Path) -> list[str | tuple[str, dict[str, str]]]:
    """ONNX Runtime's provider list with options: TensorRT builds fp16 engines where the GPU
    has fp16 and caches them in ``trt_cache`` (building one takes minutes)."""
    out: list[str | tuple[str, dict[str, str]]] = []
    for name in chosen:
        if name == PROVIDER_NAMES["tensorrt"]:
            out.append((name, {
                "trt_fp16_enable": "True",
                "trt_engine_cache_enable": "True",
                "trt_engine_cache_path": str(trt_cache),
            }))
        else:
            out.append(name)
    return out


_DEFAULT_PROVIDERS = ("tensorrt", "cuda", "cpu")  # the config's default model.providers


def shrink_frame(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` = (w, h) for the model. Area averaging is the right filter but slow for
    non-integer factors (3.1 ms for 720p -> 384x216); bilinear to twice the size and then an
    exact 2x area step gives nearly the same picture (mean difference 1.2 levels) in 0.9 ms.
    Anything but an (H, W, 3) uint8 RGB picture is a ValueError (the engines' one check)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    w, h = size
    if rgb.shape[:2] == (h, w):
        return rgb
    if rgb.shape[1] > 2 * w and rgb.shape[0] > 2 * h:
        rgb = cv2.resize(rgb, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    out: np.ndarray = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return out


class MattingEngine:
    """RVM on ONNX Runtime with its recurrent state kept between calls.

    ``input_size`` is the (width, height) the frame is resized to before inference;
    ``downsample_ratio`` sets the encoder resolution relative to it. ``threads`` = 0 uses
    :func:`available_cores`, or, given ``frame_budget_s`` (live mode: the time between two
    frames) and the CPU provider, one thread when a one-thread inference takes at most 75 % of
    it (measured here, about 0.3 s) and every core otherwise. ``thread_choice`` says why.
    ``runtime`` is ``"onnxruntime"``; ``precision`` ``"f32"`` (TensorRT may run fp16 inside).
    """

    runtime = "onnxruntime"
    precision = "f32"

    def __init__(
        self,
        model_path: Path,
        *,
        providers: Sequence[str] = ("tensorrt", "cuda", "cpu"),  # _DEFAULT_PROVIDERS
        threads: int = 0,
        input_size: tuple[int, int] = (256, 144),
        downsample_ratio: float = 0.25,
        spinning: bool = False,
        frame_budget_s: float | None = None,
        io_binding: bool | None = None,
    ) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.downsample_ratio = float(downsample_ratio)
        self._model_path, self._spinning = model_path, spinning
        self._chosen = self._usable(providers)
        self._io_binding = io_binding
        self.thread_choice = "configured" if threads else "all cores"
        cores = threads or available_cores()
        on_cpu = self._chosen[0] == PROVIDER_NAMES["cpu"]
        if not threads and frame_budget_s is not None and on_cpu and cores > 1:
            self._fit_threads(frame_budget_s, cores)  # opens the session once, twice if one thread is too slow
        else:
            self._open(cores)
        self._log()
        self.reset()

    def _fit_threads(self, budget_s: float, cores: int) -> None:
        """Use one intra-op thread when one keeps up with the frame rate, else ``cores``. Every
        extra thread costs CPU time (on 2 cores, 2 threads: 27 ms CPU per inference against 23
        ms with one) that the call application could use; more threads only shorten the latency."""
        self._open(1)
        one = self.time_inference(limit_s=CALIBRATION_LIMIT_S)
        if one <= BUDGET_SHARE * budget_s:
            self.thread_choice = (f"automatic: one thread took {one * 1e3:.1f} ms, within "
                                  f"{BUDGET_SHARE:.0%} of the {budget_s * 1e3:.1f} ms frame time")
            return
        self._open(cores)
        self.thread_choice = (f"automatic: one thread took {one * 1e3:.1f} ms, more than "
                              f"{BUDGET_SHARE:.0%} of the {budget_s * 1e3:.1f} ms frame time")

    def time_inference(
        self, runs: int = 8, limit_s: float | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> float:
        """Median wall seconds of one inference at the input size (after two warm-up runs); the
        recurrent state is reset afterwards. With ``limit_s``, no inference starts once that
        long has passed: the median of the timed runs so far, or the last warm-up run's time
        if none was timed yet (an upper bound: warm-up runs are the slowest)."""
        return time_engine(self, runs, limit_s, clock)

    @staticmethod
    def _usable(providers: Sequence[str]) -> list[str]:
        from vcam.matting.runtime import import_onnxruntime

        ort = import_onnxruntime()  # heavy import, kept out of module import time; a clear error when absent
        available = set(ort.get_available_providers())
        # The default list tries every accelerator; that one is missing is then no news (a
        # debug line). A list the user wrote (model.providers) is: say which are skipped.
        level = logging.DEBUG if tuple(providers) == _DEFAULT_PROVIDERS else logging.INFO
        chosen = []
        for short in providers:
            full = PROVIDER_NAMES[short]
            if full in available:
                chosen.append(full)
            else:
                log.log(level, "ONNX Runtime provider %s is not available in this build; skipping", short)
        if not chosen:
            raise ModelError(
                "none of the configured providers (" + ", ".join(providers) + ") is available; "
                "add 'cpu' to model.providers"
            )
        return chosen

    def _open(self, threads: int) -> None:
        """(Re)create the ONNX Runtime session with ``threads`` intra-op threads."""
        import onnxruntime as ort

        model_path, chosen, spinning = self._model_path, self._chosen, self._spinning
        self.threads = threads
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Spinning threads burn a core while waiting; the other pipeline stages need it.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        try:
            self._session = ort.InferenceSession(
                str(model_path), opts, providers=provider_options(chosen, model_path.parent / "tensorrt-cache")
            )
        except Exception as exc:  # ORT raises several private exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"cannot load model {model_path}: {first}; run 'vcam models fetch' to get a good copy"
            ) from exc
        names_in = [i.name for i in self._session.get_inputs()]
        names_out = [o.name for o in self._session.get_outputs()]
        missing = contract.missing_names(names_in, names_out)
        if missing:
            raise ModelError(
                f"model {model_path} is not a Robust Video Matting model: it lacks "
                + ", ".join(missing)
            )
        self.provider = _SHORT.get(self._session.get_providers()[0], self._session.get_providers()[0])
        # On a GPU the recurrent state stays in device memory between frames (I/O binding);
        # only the frame goes up and the alpha comes back.
        gpu = self.provider in ("cuda", "tensorrt")
        use_binding = gpu if self._io_binding is None else self._io_binding
        self._device = ("cuda" if gpu else "cpu") if use_binding else None
        w, h = self.input_size
        self._src = np.zeros((1, 3, h, w), np.float32)
        self._ratio = np.array([self.downsample_ratio], np.float32)
        self._outputs = [contract.ALPHA, *contract.STATE_OUT]
        self._state: list[Any] = []  # numpy arrays, or OrtValues on the device with I/O binding

    def _log(self) -> None:
        log.info(
            "matting engine: provider %s (%s), %d intra-op thread%s (%s), input %dx%d, ratio %.3g",
            self.provider,
            ", ".join(self._session.get_providers()),
            self.threads,
            "" if self.threads == 1 else "s",
            self.thread_choice,
            *self.input_size,
            self.downsample_ratio,
        )

    def reset(self) -> None:
        """Forget the recurrent state; the next frame is treated as the first of a scene."""
        self._state = [np.zeros(contract.INITIAL_STATE_SHAPE, np.float32) for _ in range(4)]
        if self._device is not None:
            import onnxruntime as ort

            self._state = [ort.OrtValue.ortvalue_from_numpy(z, self._device, 0) for z in self._state]
        self.frames_since_reset = 0

    def shrink(self, rgb: np.ndarray) -> np.ndarray:
        """The frame as the model sees it: (h, w, 3) uint8 RGB at the model input size (the
        frame itself when it has that size already)."""
        return shrink_frame(rgb, self.input_size)

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        """Alpha for one frame (any size, or already :meth:`shrink`-ed): (h, w) float32 0..1
        at the model input size."""
        small = self.shrink(rgb)
        # HWC uint8 -> CHW float 0..1 into the reused input buffer.
        np.multiply(small.transpose(2, 0, 1), np.float32(1 / 255), out=self._src[0], casting="unsafe")
        if self._device is not None:
            return self._infer_bound(self._device)
        feeds = {contract.SOURCE: self._src, contract.RATIO: self._ratio}
        feeds.update(zip(contract.STATE_IN, self._state, strict=True))
        pha, *state = self._session.run(self._outputs, feeds)
        self._state = state
        self.frames_since_reset += 1
        alpha: np.ndarray = pha[0, 0]
        return alpha

    def _infer_bound(self, device: str) -> np.ndarray:
        binding = self._session.io_binding()
        binding.bind_cpu_input(contract.SOURCE, self._src)
        binding.bind_cpu_input(contract.RATIO, self._ratio)
        for name, value in zip(contract.STATE_IN, self._state, strict=True):
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(contract.ALPHA, "cpu")
        for name in contract.STATE_OUT:
            binding.bind_output(name, device, 0)
        self._session.run_with_iobinding(binding)
        pha, *state = binding.get_outputs()
        self._state = state
        self.frames_since_reset += 1
        alpha: np.ndarray = pha.numpy()[0, 0]
        return alpha

    @property
    def io_binding(self) -> bool:
        """True when the recurrent state is kept as bound device values between frames."""
        return self._device is not None
