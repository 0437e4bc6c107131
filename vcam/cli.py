"""Command line: argument parsing and the one place errors become exit codes.

Known errors (:class:`vcam.errors.VcamError`) print one line and exit 1. Every command but
``run`` stops on Ctrl-C, SIGTERM and SIGHUP alike (temporary files removed) and exits 128 +
the signal's number: 130, 143, 129 (``run`` keeps its own daemon handling). Output to a
closed pipe (``vcam ... | head``) ends quietly with 141, as for other command-line tools.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, get_args

from vcam import __version__
from vcam.commands import COMMANDS, SWITCH
from vcam.config import MODES, Config, load_config, parse_color, parse_size
from vcam.errors import ConfigError, Interrupted, OutputError, VcamError
from vcam.media.formats import ENCODER_PRESETS
from vcam.presets import LIVE_PRESET, OFFLINE_PRESET, PRESETS, RefineMethod
from vcam.signals import DaemonSignals, stop_signals_as_interrupt

__all__ = ["main"]

log = logging.getLogger("vcam")


def _tqdm_bytes(total: int | None, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False, file=sys.stderr)


def _size_arg(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _jobs_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return n


def _color_arg(text: str) -> tuple[int, int, int]:
    try:
        return parse_color(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_common(p: argparse.ArgumentParser, *, live: bool = True) -> None:
    """The config-override flags every engine command takes; ``live``: also those that apply
    only to the live pipeline (``--alpha``), left off ``vcam process``."""
    p.add_argument("--config", "-c", metavar="PATH", help="config file (default ~/.config/vcam/config.yaml if it exists)")
    g = p.add_argument_group("effect")
    g.add_argument("--mode", "-m", choices=list(MODES), help="background effect")
    g.add_argument("--background", "-b", metavar="PATH", help="image or video for --mode replace")
    g.add_argument("--color", type=_color_arg, metavar="#RRGGBB", help="colour for --mode color")
    g.add_argument("--blur-strength", type=int, metavar="N", help="blur strength 1..100 (sigma in pixels at 720p)")
    g.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None, help="flip horizontally")
    g.add_argument("--framing", choices=SWITCH, help="auto-framing (effect.framing)")
    g.add_argument("--light", choices=SWITCH, help="low-light correction (effect.light)")
    m = p.add_argument_group("model")
    m.add_argument("--preset", choices=list(PRESETS), help="quality preset: model input size, downsample ratio and "
                   "refinement (run: realtime, process: offline; see docs/quality.md)")
    m.add_argument("--refine", choices=list(get_args(RefineMethod)), help="alpha upsampling (overrides the preset's)")
    m.add_argument("--model-input", type=_size_arg, metavar="WxH", help="model input size, e.g. 256x144")
    m.add_argument("--downsample-ratio", type=float, metavar="R", help="RVM downsample ratio in (0, 1]")
    m.add_argument("--providers", metavar="LIST", help="comma-separated, in order: tensorrt,cuda,cpu")
    m.add_argument("--runtime", choices=["auto", "onnxruntime", "openvino"], help="matting runtime (auto: measured at start)")
    m.add_argument("--precision", choices=["auto", "f32", "bf16"], help="arithmetic (bf16 only where the CPU has it natively)")
    m.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime intra-op threads (0 = automatic: live mode one when it keeps up, else all cores; process all cores)")
    if live:
        m.add_argument("--alpha", choices=["wait", "latest"], help="live alpha policy (see live.alpha in the default config)")
    m.add_argument("--stats-json", metavar="PATH", help="write run statistics as JSON at exit")


# (section, key, argparse dest) of each flag that overrides a config key; the flag itself is
# --DEST with "-" for "_" (--no-DEST when a boolean flag was given as false).
_FLAG_KEYS: tuple[tuple[str, str, str], ...] = (
    ("effect", "mode", "mode"),
    ("effect", "background", "background"),
    ("effect", "color", "color"),
    ("effect", "blur_strength", "blur_strength"),
    ("effect", "mirror", "mirror"),
    ("effect", "framing", "framing"),
    ("effect", "light", "light"),
    ("model", "preset", "preset"),
    ("model", "refine", "refine"),
    ("model", "input_size", "model_input"),
    ("model", "downsample_ratio", "downsample_ratio"),
    ("model", "threads", "threads"),
    ("model", "providers", "providers"),
    ("model", "runtime", "runtime"),
    ("model", "precision", "precision"),
    ("camera", "size", "size"),
    ("camera", "fps", "fps"),
    ("camera", "device", "source"),
    ("output", "size", "output_size"),
    ("output", "device", "device"),
    ("live", "alpha", "alpha"),
    ("camera", "on_demand", "on_demand"),
    ("tray", "enabled", "tray"),
)


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """CLI flags as a nested mapping over the config file (validated with it)."""
    o: dict[str, dict[str, Any]] = {"camera": {}, "model": {}, "effect": {}, "output": {}, "live": {}, "tray": {}}
    for section, key, dest in _FLAG_KEYS:
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "providers":
            value = [x.strip() for x in value.split(",") if x.strip()]
        elif dest == "source":
            value = int(value) if value.isdigit() else value
        o[section][key] = list(value) if isinstance(value, tuple) else value
    return {k: v for k, v in o.items() if v}


def _flag_names(args: argparse.Namespace) -> dict[str, str]:
    """``{"camera.size": "--size", ...}`` for the flags given, so that a bad value is blamed
    on its flag rather than on the config file it overrides."""
    names = {}
    for section, key, dest in _FLAG_KEYS:
        value = getattr(args, dest, None)
        if value is not None:
            flag = dest.replace("_", "-")
            names[f"{section}.{key}"] = f"--no-{flag}" if value is False else f"--{flag}"
    return names


def _config(args: argparse.Namespace, preset: str = LIVE_PRESET) -> Config:
    """The config file (or defaults) under the CLI flags, over the command's default ``preset``."""
    defaults = {"model": {"preset": preset}}
    cfg, path = load_config(
        Path(args.config) if args.config else None, _overrides(args), defaults=defaults, flags=_flag_names(args)
    )
    log.debug("config from %s", path or "defaults")
    return cfg


def _cmd_run(args: argparse.Namespace) -> int:
    import threading

    stop = threading.Event()
    # First, before the slow imports and the model load: a SIGHUP (systemctl reload) or
    # SIGTERM in start-up must not kill the service (see vcam.signals.DaemonSignals).
    with DaemonSignals(stop, final=args.owns_process) as signals:
        from vcam.config import default_config_path
        from vcam.live.daemon import DesktopOptions
        from vcam.live.run import run_live

        overrides = _overrides(args)
        cfg, path = load_config(Path(args.config) if args.config else None, overrides, flags=_flag_names(args))
        if args.recalibrate:
            from vcam.build import calibration_cache
            from vcam.matting.choice import forget

            forget(calibration_cache(cfg))
        # Hot reload watches the given file, or the default user file (which may appear later).
        desktop = DesktopOptions(
            config_path=path or default_config_path(), config_required=args.config is not None, overrides=overrides,
            signals=signals,
        )
        summary = run_live(
            cfg,
            target=args.output,
            duration=args.duration,
            stats_json=args.stats_json,
            stop=stop,
            overwrite=args.overwrite,
            progress=_tqdm_bytes,
            desktop=desktop,
        )
    lat = summary["latency_ms"]
    log.info(
        "%s frames out, %.1f fps, %s dropped, latency p50 %s ms, p95 %s ms",
        summary["frames_out"], summary["fps"], summary["frames_dropped"],
        lat.get("p50") if isinstance(lat, dict) else None,
        lat.get("p95") if isinstance(lat, dict) else None,
    )
    return 0


def _cmd_process(args: argparse.Namespace) -> int:
    from vcam.files.plan import expand_inputs, plan_jobs
    from vcam.files.process import FileOptions
    from vcam.files.workers import run_jobs

    transparent = args.mode == "remove"
    if transparent:
        args.mode = None  # not an effect of the config: the person over nothing
    cfg = _config(args, OFFLINE_PRESET)
    options = FileOptions(
        codec=args.codec, crf=args.crf, encoder_preset=args.encoder_preset, transparent=transparent,
        audio=not args.no_audio and args.audio != "drop", audio_policy="auto" if args.audio == "drop" else args.audio,
        on_corrupt=args.on_corrupt, overwrite=args.overwrite, overlap=not args.no_overlap,
    )
    _check_stats_path(args.stats_json)  # before any work, not after all of it
    chunks, ray = _cluster_settings(args, cfg)
    inputs = expand_inputs(args.input)
    created: list[Path] = []
    try:
        jobs, skipped = plan_jobs(
            inputs, args.output, args.out_pattern, options, matte_out=args.matte_out,
            skip_existing=args.skip_existing, created=created,
        )
        for job in skipped:
            print(f"skipped {job.input}: {job.output} exists")
        return run_jobs(
            cfg, options, inputs, jobs, skipped,
            workers=args.jobs, quiet=args.quiet, stats_json=args.stats_json, progress=_tqdm_bytes, chunks=chunks, ray=ray,
        )
    finally:
        for folder in reversed(created):  # a folder vcam made stays only if something is in it
            with contextlib.suppress(OSError):
                folder.rmdir()


def _add_cluster_flags(proc: argparse.ArgumentParser) -> None:
    """``vcam process`` on Ray and in chunks (docs/files.md, "On a Ray cluster")."""
    proc.add_argument("--executor", choices=["local", "ray"], default="local",
                      help="local (default): this process or --jobs processes; ray: one Ray task per file or chunk (in the vcam folder: pip install '.[cpu,cluster]')")
    proc.add_argument("--ray-address", metavar="ADDRESS", help="the Ray cluster to use (default: RAY_ADDRESS, else a Ray started on this machine)")
    proc.add_argument("--ray-cpus", type=_jobs_arg, metavar="N", help="CPUs each Ray task asks for and uses as ONNX Runtime threads (default: --threads, else 1)")
    proc.add_argument("--ray-gpus", type=float, default=0.0, metavar="G", help="GPUs each Ray task asks for (default 0)")
    group = proc.add_mutually_exclusive_group()
    group.add_argument("--chunks", type=_jobs_arg, metavar="N", help="cut each file into N chunks at keyframes, matted separately and joined losslessly")
    group.add_argument("--chunk-seconds", type=float, metavar="S", help="cut each file into chunks of about S seconds")
    proc.add_argument("--lead-in", type=int, metavar="FRAMES", help="frames matted before each cut to warm the model up (default 128)")


def _cluster_settings(args: argparse.Namespace, cfg: Any) -> tuple[Any, Any]:
    """(ChunkSpec or None, RaySettings or None) from the flags."""
    chunks = ray = None
    if args.chunks is not None or args.chunk_seconds is not None:
        from vcam.files.chunks import DEFAULT_LEAD_IN, ChunkSpec

        if args.chunk_seconds is not None and not args.chunk_seconds > 0:
            raise VcamError(f"--chunk-seconds {args.chunk_seconds}: must be more than 0")
        if args.lead_in is not None and args.lead_in < 0:
            raise VcamError(f"--lead-in {args.lead_in}: must be 0 or more")
        lead = DEFAULT_LEAD_IN if args.lead_in is None else args.lead_in
        following = [name for name in ("framing", "light") if getattr(cfg.effect, name) != "off"]
        if following:  # they follow the picture over seconds: a chunk would start them afresh (a seam)
            raise VcamError(
                f"effect.{following[0]} {getattr(cfg.effect, following[0])} follows the picture over time and is not chunked; "
                f"leave out --chunks/--chunk-seconds or use --{following[0]} off"
            )
        chunks = ChunkSpec(count=args.chunks, seconds=args.chunk_seconds, lead_in=lead)
    elif args.lead_in is not None:
        raise VcamError("--lead-in applies to chunked files: add --chunks N or --chunk-seconds S")
    if args.executor == "ray":
        from vcam.files.ray_executor import RaySettings, import_ray

        import_ray()  # a missing Ray is one clear error before any work
        if args.ray_gpus < 0:
            raise VcamError(f"--ray-gpus {args.ray_gpus}: must be 0 or more")
        ray = RaySettings(address=args.ray_address, cpus=args.ray_cpus or cfg.model.threads or 1, gpus=args.ray_gpus)
    elif args.ray_address or args.ray_cpus or args.ray_gpus:
        raise VcamError("--ray-address, --ray-cpus and --ray-gpus apply to --executor ray")
    return chunks, ray


def _check_stats_path(path: str | None) -> None:
    """Refuse a ``--stats-json`` that cannot be written (raises OutputError)."""
    if not path:
        return
    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputError(f"--stats-json {path}: is a folder; give a file name such as stats.json")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"--stats-json {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputError(f"--stats-json {path}: not writable (permission denied)")


def _allow_mode(parser: argparse.ArgumentParser, mode: str, help_text: str) -> None:
    """Add a choice to the shared --mode flag of one subcommand only."""
    for action in parser._actions:  # argparse keeps no public handle on an added argument
        if action.dest == "mode" and action.choices is not None:
            action.choices = [*action.choices, mode]
            action.help = help_text


def _cmd_bench(args: argparse.Namespace) -> int:
    import json

    from vcam.tools.bench import bench_variants, format_table, run_bench

    if args.peer:
        return _bench_peer(args)
    cfg = _config(args)
    sizes = tuple(args.sizes) if args.sizes else ((1280, 720), (640, 480), (1920, 1080))
    clip = Path(args.clip) if args.clip else None
    variants = bench_variants(cfg, args.variant or [])
    rows: list[dict[str, Any]] = []
    for label, vcfg in variants:
        results = run_bench(vcfg, sizes, args.frames, clip)
        rows += [{"variant": label, **r.as_dict()} for r in results]
        print(f"== {label}")
        print(format_table(results), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


# vcam run flags passed on to the peer harness's vcam (as VCAM_ARGS) when given to vcam bench.
_PEER_FLAGS = ("config", "preset", "model_input", "runtime", "precision", "threads", "blur_strength", "refine", "alpha")


def _bench_peer(args: argparse.Namespace) -> int:
    import json

    from vcam.errors import InputError
    from vcam.tools.peer import find_script, run_peer

    script = find_script(args.peer_script, os.environ, Path.cwd())
    if not args.clip:
        raise InputError("--peer lfbw needs --clip VIDEO (e.g. a 1280x720 comp clip from shared/evaldata/build.py)")
    vcam_args: list[str] = []
    for dest in _PEER_FLAGS:
        value = getattr(args, dest, None)
        if value is not None:
            shown = f"{value[0]}x{value[1]}" if isinstance(value, tuple) else str(value)
            vcam_args += [f"--{dest.replace('_', '-')}", shown]
    summary = run_peer(script, Path(args.clip), rounds=args.rounds, duration=args.duration, vcam_args=vcam_args,
                       out=Path(args.json).parent / "peer" if args.json else None)
    print(summary.line())
    if args.json:
        Path(args.json).write_text(json.dumps({**summary.__dict__, "ratio": round(summary.ratio, 3),
                                               "vcam_args": vcam_args}, indent=2) + "\n", encoding="utf-8")
    return 0


def _cmd_soak(args: argparse.Namespace) -> int:
    import json

    from vcam.tools.soak import default_soak

    cfg = _config(args)
    res = default_soak(cfg, args.frames, warmup=min(1000, args.frames // 4))
    d = res.as_dict()
    if args.json:
        Path(args.json).write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")
    print(f"frames {res.frames}, mode switches {res.mode_switches}, reloads {res.reloads}, engine rebuilds {res.engine_rebuilds}")
    for key in ("rss_kb", "threads", "fds"):
        print(f"{key:>8}: start {res.start[key]:>8}  end {res.end[key]:>8}")
    print(f"RSS growth after warm-up: {res.rss_growth_mb:.1f} MB")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from vcam.matting.models import KNOWN_MODELS, UrlSource, ensure_model, fetch_model, list_models

    cfg = _config(args)
    from vcam.build import model_dir

    folder = Path(args.dir).expanduser() if args.dir else model_dir(cfg)
    if args.action == "fetch":
        sources = (UrlSource(args.url),) if args.url else None
        for spec in KNOWN_MODELS.values():
            if args.force:
                path = fetch_model(spec, folder, _tqdm_bytes, sources)
            else:
                path = ensure_model(spec.name, None, folder, progress=_tqdm_bytes, sources=sources)
            print(f"{spec.name}  {path}  verified")
        return 0
    for st in list_models(folder):
        size = f"{st.size} bytes" if st.size is not None else "-"
        print(f"{st.name}  {st.path}  {size}  {st.note}" + (f"; {st.fix}" if st.fix else ""))
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    import pyvirtualcam

    from vcam.media.devices import list_video_devices

    devices = list_video_devices()
    if not devices:
        print("no video devices found (no /dev/video*): no camera is connected and no v4l2loopback device exists")
    for d in devices:
        print(f"{d.path}  {d.name}  [{d.kind}]")
    if not any(d.virtual for d in devices):
        from vcam.sinks.virtualcam import SETUP_HINT

        print(f"no virtual camera: {SETUP_HINT}")
    backends = ", ".join(sorted(pyvirtualcam.camera.BACKENDS)) or "none"
    print(f"pyvirtualcam backends: {backends}")
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    from vcam.config import default_config_path, read_yaml, validate_config

    path = Path(args.path) if args.path else default_config_path()
    if not args.path and not path.exists():
        print(f"ok (no config file at {path}; defaults are used)")
        return 0
    try:
        validate_config(read_yaml(path), str(path))
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} error(s)")
        for p in exc.problems:
            print(f"  {p}")
        return 1
    print("ok")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from vcam.config import default_config_path
    from vcam.setup.configfile import STARTER, init_config

    if args.action == "init":
        path = init_config(force=args.force)
        print(f"wrote {path} (every key with its default and a comment; check it with: vcam check-config)")
    elif args.default:
        print(STARTER)
    else:
        path = default_config_path()
        print(path)
        if not path.exists():
            # stderr: stdout stays the bare path, for scripts
            print(f"vcam: {path} does not exist: vcam uses the defaults (vcam config init writes a commented one)",
                  file=sys.stderr)
    return 0


def _add_config_command(sub: Any) -> None:  # argparse's private _SubParsersAction
    cfg = sub.add_parser("config", help="write a commented starter config (init), or show where config is read from (path)")
    acts = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = acts.add_parser("init", help="write the commented default config to ~/.config/vcam/config.yaml")
    init.add_argument("--force", action="store_true", help="replace an existing config file")
    path = acts.add_parser("path", help="print the config file vcam reads when no --config is given")
    path.add_argument("--default", action="store_true", help="print where the commented default config is installed instead")
    cfg.set_defaults(func=_cmd_config)


def _run_epilog() -> str:
    from importlib.resources import files

    starter = files("vcam") / "setup" / "default.yaml"  # not imported: vcam.setup stays unloaded
    return (
        "Settings come from ~/.config/vcam/config.yaml (vcam config path prints where) or --config; "
        f"flags override them. Every key, with its default and a comment: {starter} "
        "(vcam config init copies it to your config path)."
    )


def _cmd_ctl(args: argparse.Namespace) -> int:
    import json

    from vcam.live.control_socket import Request, send_request

    kind = COMMANDS[args.action].value
    value: str | bool | None = getattr(args, "value", None)
    if kind == "path":
        value = str(Path(str(value)).expanduser().absolute())
    elif kind == "bool":
        value = value == "on"
    status = send_request(Request(args.action, value))
    if args.action == "status":
        print(json.dumps(status, indent=2))
    else:
        print(
            f"ok: mode {status['mode']}, background {status['background'] or '-'}, "
            f"mirror {'on' if status['mirror'] else 'off'}, "
            + ("quitting" if status.get("stopping") else "paused" if status["paused"] else "running")
        )
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from vcam.setup.doctor import format_checks, run_checks

    checks = run_checks(Path(args.config) if args.config else None)
    print(format_checks(checks))
    return 1 if any(c.status == "fail" for c in checks) else 0


def _cmd_install_service(args: argparse.Namespace) -> int:
    from vcam.setup.service import install_service, render_unit, service_command

    command = service_command(Path(args.config).expanduser().absolute() if args.config else None)
    if args.print:
        print(render_unit(command), end="")
        return 0
    path = install_service(command, force=args.force)
    print(f"wrote {path}")
    print("start it now and at every login with:")
    print("  systemctl --user daemon-reload && systemctl --user enable --now vcam.service")
    return 0


def _add_desktop_commands(sub: Any) -> None:  # argparse's private _SubParsersAction
    ctl = sub.add_parser("ctl", help="control the running vcam daemon (status, mode, background, pause, ...)")
    acts = ctl.add_subparsers(dest="action", required=True, metavar="ACTION")
    for command in COMMANDS.values():
        act = acts.add_parser(command.name, help=command.help)
        if command.value == "mode":
            act.add_argument("value", metavar="MODE", choices=MODES)
        elif command.value == "path":
            act.add_argument("value", metavar="PATH")
        elif command.value == "bool":
            act.add_argument("value", metavar="on|off", choices=["on", "off"])
        elif command.value == "switch":
            act.add_argument("value", metavar="|".join(SWITCH), choices=SWITCH)
    ctl.set_defaults(func=_cmd_ctl)

    doctor = sub.add_parser("doctor", help="check the setup (virtual camera, cameras, model, tray, config) and say how to fix it")
    doctor.add_argument("--config", "-c", metavar="PATH", help="config file to check")
    doctor.set_defaults(func=_cmd_doctor)

    svc = sub.add_parser("install-service", help="install a systemd user service that starts vcam at login")
    svc.add_argument("--config", "-c", metavar="PATH", help="config file the service runs with")
    svc.add_argument("--print", action="store_true", help="print the unit instead of writing it")
    svc.add_argument("--force", action="store_true", help="replace an existing unit file")
    svc.set_defaults(func=_cmd_install_service)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vcam", description="Real-time virtual webcam with background blur/replacement (Robust Video Matting).")
    parser.add_argument("--version", action="version", version=f"vcam {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run the virtual camera (default: webcam -> blur -> virtual camera)", epilog=_run_epilog()
    )
    run.add_argument("--source", "-s", metavar="SRC", help="camera index, device path, video file or 'testpattern'")
    run.add_argument("--output", "-o", metavar="SPEC", help="virtualcam (default), preview, null, or a video file path")
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    run.add_argument("--size", type=_size_arg, metavar="WxH", help="camera capture size, e.g. 1280x720")
    run.add_argument("--fps", type=float, help="camera frame rate")
    run.add_argument("--output-size", type=_size_arg, metavar="WxH", help="virtual camera size (default: camera size)")
    run.add_argument("--device", metavar="PATH", help="virtual camera device, e.g. /dev/video10")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    run.add_argument("--recalibrate", action="store_true",
                     help="measure the runtimes and input sizes again (model.runtime: auto) instead of using the cache")
    run.add_argument("--tray", action=argparse.BooleanOptionalAction, default=None, help="show the tray icon (default: tray.enabled)")
    run.add_argument(
        "--on-demand", action=argparse.BooleanOptionalAction, default=None,
        help="open the webcam only while an app uses the virtual camera (Linux)",
    )
    _add_common(run)
    run.set_defaults(func=_cmd_run)

    proc = sub.add_parser(
        "process", help="replace, blur or remove the background of video files",
        description="Process video files like the live camera, frame for frame: audio, timestamps, rotation "
        "and duration are kept. Several inputs (or a quoted glob such as 'clips/*.mp4') go to -o FOLDER/ "
        "or --out-pattern.",
    )
    proc.add_argument("input", nargs="+", metavar="INPUT", help="input video file(s) or glob pattern(s)")
    proc.add_argument("-o", "--output", metavar="OUTPUT",
                      help="output file (.mp4 .m4v .mov .mkv .webm; .png .jpg for a still picture), or a folder "
                      "(ending with /) for several inputs")
    proc.add_argument("--out-pattern", metavar="PATTERN",
                      help="output name per input from {stem} {name} {ext} {parent} {folder} {index}, e.g. '{parent}/{stem}_blur.mp4'")
    proc.add_argument("--codec", choices=["h264", "hevc", "vp9", "prores", "png"],
                      help="video codec (default: from the output suffix; h264 for .mp4); png writes a folder of PNG files")
    proc.add_argument("--crf", type=int, metavar="N",
                      help="quality, lower is better (h264 default 18, hevc 22 of 0-51; vp9 30 of 0-63)")
    proc.add_argument("--encoder-preset", default="medium", choices=ENCODER_PRESETS, metavar="NAME",
                      help="encoder speed: ultrafast ... medium (default) ... veryslow")
    proc.add_argument("--no-audio", action="store_true", help="leave the input's audio out (the same as --audio drop)")
    proc.add_argument("--audio", choices=["auto", "copy", "reencode", "drop"], default="auto",
                      help="auto (default): copy each audio stream untouched, re-encoding (Opus in .webm) only one the "
                      "file type cannot hold; copy: copy or refuse; reencode: always; drop: leave the audio out")
    proc.add_argument("--on-corrupt", choices=["fail", "repeat"], default="fail",
                      help="a corrupt input frame fails the file (default) or is replaced by the previous frame")
    proc.add_argument("--matte-out", metavar="DIR", help="also write each frame's alpha as DIR/000000.png, ... (several inputs: DIR/<name>/)")
    proc.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    proc.add_argument("--skip-existing", action="store_true", help="with several inputs, skip those whose output exists")
    proc.add_argument("--jobs", "-j", type=_jobs_arg, default=1, metavar="N", help="process N files at once in separate processes (default 1)")
    _add_cluster_flags(proc)
    proc.add_argument("--no-overlap", action="store_true",
                      help="decode, matte and encode one after another on one thread (slower; for comparison)")
    _add_common(proc, live=False)
    _allow_mode(proc, "remove", "background effect; remove: transparent output (.mov ProRes 4444, .webm/.mkv VP9, --codec png)")
    proc.set_defaults(func=_cmd_process)

    bench = sub.add_parser("bench", help="measure the live pipeline (FPS, latency, CPU) against the bare model")
    bench.add_argument("--frames", type=int, default=600, help="output frames measured per size (default 600)")
    bench.add_argument("--sizes", type=_size_arg, nargs="+", metavar="WxH", help="picture sizes (default 1280x720 640x480 1920x1080)")
    bench.add_argument("--clip", metavar="PATH", help="a video to play as the camera (default: a generated test pattern)")
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    bench.add_argument("--peer", choices=["lfbw"], help="instead: CPU per frame against the peer in one run "
                       "(its side-by-side harness; needs --clip; see docs/performance.md)")
    bench.add_argument("--peer-script", metavar="PATH", help="the harness (default $VCAM_PEER_LFBW, else "
                       "../shared/peers/lfbw/side_by_side.sh)")
    bench.add_argument("--rounds", type=int, default=3, help="--peer: rounds, order alternating (default 3)")
    bench.add_argument("--duration", type=float, default=30.0, help="--peer: seconds per tool and round (default 30)")
    bench.add_argument("--variant", action="append", metavar="K=V;...",
                       help="compare settings in one run, e.g. 'live.alpha=latest;model.threads=1' (repeatable)")
    _add_common(bench)
    bench.set_defaults(func=_cmd_bench)

    soak = sub.add_parser("soak", help="push many frames through the live pipeline; report memory, threads, fds")
    soak.add_argument("--frames", type=int, default=50_000, help="frames to push (default 50000)")
    soak.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    _add_common(soak)
    soak.set_defaults(func=_cmd_soak)

    models = sub.add_parser("models", help="fetch or list the matting models")
    models.add_argument("action", choices=["fetch", "list"])
    models.add_argument("--dir", metavar="DIR", help="model folder (default: model.dir or ~/.cache/vcam/models)")
    models.add_argument("--force", action="store_true", help="fetch again even if a verified copy exists")
    models.add_argument("--url", metavar="URL",
                        help="fetch from this HTTPS URL (a mirror) instead; the known sha256 is still checked")
    models.add_argument("--config", "-c", metavar="PATH", help="config file")
    models.set_defaults(func=_cmd_models)

    devices = sub.add_parser("devices", help="list cameras and virtual camera devices")
    devices.set_defaults(func=_cmd_devices)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("path", nargs="?", metavar="PATH", help="config file (default ~/.config/vcam/config.yaml)")
    check.set_defaults(func=_cmd_check_config)
    _add_config_command(sub)
    _add_desktop_commands(sub)
    _take_global_flags(sub)
    return parser


def _take_global_flags(sub: Any) -> None:  # argparse's private _SubParsersAction
    """``-v`` and ``-q`` after the verb too (``vcam process a.mp4 -o b.mp4 -q``), also after a
    ``vcam ctl`` action. Their default is SUPPRESS, so an absent flag leaves the value given
    before the verb (or the top-level default) as it was."""
    for parser in set(sub.choices.values()):
        for action in parser._actions:  # argparse keeps no public handle on nested subparsers
            if isinstance(action, argparse._SubParsersAction):
                _take_global_flags(action)
        group = parser.add_argument_group("global options")
        group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output (-vv for debug)")
        group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only warnings and errors")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="vcam: %(message)s" if verbose == 0 else "%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def entry() -> None:
    """The ``vcam`` command: :func:`main`, then exit.

    Every command has closed what it opened when :func:`main` returns. The ``atexit`` handlers
    still run (logging, multiprocessing's clean-up after ``--jobs``), then ``os._exit`` skips
    the rest of the interpreter's teardown, where native thread pools crashed the process
    after a clean Ctrl-C (history: docs/reliability.md, "Exit without the interpreter's teardown").
    """
    import atexit
    import os

    code = main(owns_process=True)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None, *, owns_process: bool = False) -> int:
    """Entry point of the ``vcam`` command; returns the exit status. ``owns_process``: the
    process exits right after (:func:`entry`), so stop signals are ignored once the command
    has finished (see :func:`~vcam.signals.stop_signals_as_interrupt`)."""
    try:
        with stop_signals_as_interrupt():  # a signal while the arguments are parsed: nothing to clean up
            args = build_parser().parse_args(argv)
    except KeyboardInterrupt as exc:
        print("vcam: interrupted", file=sys.stderr)
        return 128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)
    args.owns_process = owns_process
    _setup_logging(args.verbose, args.quiet)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        # `run` is the daemon: it handles SIGTERM (stop) and SIGHUP (reload) itself
        with contextlib.nullcontext() if func is _cmd_run else stop_signals_as_interrupt(final=owns_process):
            code = func(args)
        sys.stdout.flush()  # here, so that a closed pipe is seen here
        return code
    except VcamError as exc:
        print(f"vcam: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print("vcam: interrupted", file=sys.stderr)
        return 128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)
    except BrokenPipeError as exc:
        if not _stdout_closed():  # some other pipe or socket: not the reader of our output gone
            return _internal_error(args, exc)
        _silence_stdout()
        return 128 + signal.SIGPIPE
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, full traceback with -v
        stop = _stop_behind(exc)
        if stop is not None:
            print("vcam: interrupted", file=sys.stderr)
            return 128 + (stop.signum if isinstance(stop, Interrupted) else signal.SIGINT)
        return _internal_error(args, exc)


def _stop_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or stop signal) that ``exc`` was raised from or while handling, if any:
    Python wraps one that lands in some places in another error (Ctrl-C while numba's classes
    were being created on import: ``RuntimeError: Error calling __set_name__ ...``), which is
    still the user's stop, not a bug."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def _internal_error(args: argparse.Namespace, exc: Exception) -> int:
    if args.verbose:
        log.error("internal error", exc_info=exc)
    print(f"vcam: internal error: {type(exc).__name__}: {exc} (run with -v for details and please report it)", file=sys.stderr)
    return 2


def _stdout_closed() -> bool:
    """Whether nobody reads standard output any more (a pipe whose reader has exited)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # POLLERR is reported whatever is asked for
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real descriptor (captured in tests)
        return False


def _silence_stdout() -> None:
    """Point standard output at /dev/null: what is still buffered cannot fail again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
