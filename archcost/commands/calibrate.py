"""``archcost calibrate``: time a designed kernel set on one device and write its device profile (JSON)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archcost.commands._common import EXIT_INTERRUPTED, EXIT_OK, emit, positive_int


def partial_path(output: str) -> Path:
    """Where the points timed so far are kept while ``output`` is being calibrated."""
    return Path(f"{output}.partial.jsonl")


def _summary(profile) -> str:
    from archcost.predict.kinds import LARGE_TENSOR_BYTES
    from archcost.tables import render_table

    rows = []
    for kind, k in sorted(profile.kinds.items()):
        r, e = k.rule, k.error
        rows.append(
            [
                kind,
                r.form,
                e.points,
                f"{1 / r.seconds_per_flop / 1e9:.1f}" if r.seconds_per_flop else "",
                f"{1 / r.seconds_per_byte / 1e9:.2f}" if r.seconds_per_byte else "",
                f"{1 / r.seconds_per_large_byte / 1e9:.2f}" if r.seconds_per_large_byte else "",
                f"{r.overhead_s * 1e6:.1f}",
                f"{e.median_abs_pct:.1f}",
                f"{e.max_abs_pct:.1f}",
                f"{100 * e.within_10pct:.0f}%",
            ]
        )
    headers = [
        "Kind",
        "Form",
        "Points",
        "GFLOP/s",
        "GB/s",
        "Large GB/s",
        "Overhead us",
        "Median |err| %",
        "Max |err| %",
        "Within 10%",
    ]
    title = (
        f"Device profile of {profile.device} ({profile.device_name}), {profile.threads} thread(s), {profile.dtype}, "
        f"torch {profile.torch_version}, {profile.mode} kernel set: the fit's error on its own points (Large GB/s: "
        f"the added price of tensors of {LARGE_TENSOR_BYTES // 2**20} MiB or more, per byte)"
    )
    text = title + "\n" + render_table(rows, "text", headers=headers, left=2) + "\n"
    b = profile.block_error
    if b is not None and b.points:
        text += (
            f"Designed blocks ({b.points}), each predicted as the sum of its layers against its measured time: "
            f"median |err| {b.median_abs_pct:.1f}%, {100 * b.within_10pct:.0f}% within 10%, "
            f"{100 * b.within_20pct:.0f}% within 20%\n"
        )
    return text


def process_path(output: str, i: int) -> Path:
    """Where the ``i``-th process of ``--processes`` writes its own profile (kept until the merge is written)."""
    return Path(f"{output}.process{i}.json")


def _in_processes(args: argparse.Namespace) -> int:
    """``--processes N``: the same calibration in N fresh processes one after another, then their median per
    point (``archcost.predict.calibrate.merge_profiles``). A process whose profile is already there is not run
    again, and each process resumes its own partial file: rerunning the command after Ctrl-C goes on."""
    import subprocess

    from archcost.predict.calibrate import merge_profiles
    from archcost.predict.profile import ProfileError, load_profile

    paths = [process_path(args.output, i + 1) for i in range(args.processes)]
    profiles = []
    for i, path in enumerate(paths):
        if args.restart:
            path.unlink(missing_ok=True)
        if path.exists():
            try:
                profiles.append(load_profile(path))
                print(f"process {i + 1}/{args.processes}: kept {path}", file=sys.stderr)
                continue
            except ProfileError:
                path.unlink()
        cmd = [sys.executable, "-c", "import sys; from archcost.cli import main; sys.exit(main())", "calibrate",
               "--device", args.device, "--dtype", args.dtype, "--output", str(path), "--quiet"]  # fmt: skip
        cmd += (["--threads", str(args.threads)] if args.threads else []) + (["--smoke"] if args.smoke else [])
        cmd += ["--restart"] if args.restart else []
        print(f"process {i + 1}/{args.processes}: calibrating in a fresh process", file=sys.stderr)
        try:
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL)
        except KeyboardInterrupt:
            done = None
        if done is None or done.returncode == EXIT_INTERRUPTED:
            print(
                f"archcost: interrupted: the processes' profiles and points so far are kept beside {args.output}; "
                "run the same command again to go on from there (--restart to start over)",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        if done.returncode != EXIT_OK:
            return done.returncode  # the child said why, on stderr
        profiles.append(load_profile(path))
    profile = merge_profiles(profiles)
    profile.save(args.output)
    for path in paths:
        path.unlink(missing_ok=True)
    print(f"wrote {args.output} (the median of {args.processes} processes per point)", file=sys.stderr)
    emit(_summary(profile), None)
    return EXIT_OK


def _refit(args: argparse.Namespace) -> int:
    """``--refit OLD``: OLD's measured points fitted again by this archcost (``calibrate.refit``), nothing timed."""
    from archcost.errors import InputError
    from archcost.predict.calibrate import refit
    from archcost.predict.profile import load_profile

    if args.processes > 1 or args.smoke or args.restart:
        raise InputError(
            "--refit times nothing: it cannot be given with --processes, --smoke or --restart",
            "drop those options, or calibrate without --refit",
        )
    old = load_profile(args.refit)
    given = {"--device": (args.device, "cpu", old.device), "--threads": (args.threads, None, old.threads),
             "--dtype": (args.dtype, "float32", old.dtype)}  # fmt: skip
    for option, (value, default, own) in given.items():
        if value != default and str(value) != str(own):
            raise InputError(
                f"{option} {value} is not the refitted profile's own ({own}): --refit keeps the setup its points "
                "were timed in", f"drop {option}, or calibrate again on that setup",
            )  # fmt: skip
    profile = refit(old)
    profile.save(args.output)
    dropped = len(old.points) - len(profile.points)
    print(f"wrote {args.output}: the {len(profile.points)} points of {args.refit} fitted by this archcost"
          + (f" ({dropped} kernels it no longer has left out)" if dropped else ""), file=sys.stderr)  # fmt: skip
    emit(_summary(profile), None)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from archcost.predict.calibrate import calibrate as calibrate_device
    from archcost.predict.calibrate import kernels
    from archcost.profiling.sweep import check_writable

    check_writable(args.output, "--output device profile")  # before anything is timed
    if args.refit:
        return _refit(args)
    if args.processes > 1:
        return _in_processes(args)
    partial = partial_path(args.output)
    if args.restart:
        partial.unlink(missing_ok=True)
    mode = "smoke" if args.smoke else "full"
    total = len(kernels(mode))
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, desc="calibrate", unit="kernel", file=sys.stderr, leave=False)

    def on_point(done: int, count: int, key: str, skipped: bool) -> None:
        if bar is not None:
            bar.set_postfix_str(key[:40], refresh=False)
            bar.update(1)

    try:
        profile = calibrate_device(
            args.device, threads=args.threads, dtype=args.dtype, mode=mode, partial=partial, on_point=on_point
        )
    except KeyboardInterrupt:
        print(
            f"archcost: interrupted: the kernels timed so far are kept in {partial}; run the same command again to "
            "go on from there (--restart to start over)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    profile.save(args.output)
    partial.unlink(missing_ok=True)
    print(f"wrote {args.output}", file=sys.stderr)
    emit(_summary(profile), None)
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="time a designed set of layer kernels and write a device profile for archcost predict",
        description="Time convolutions (dense, pointwise, depthwise, grouped), linear layers, matmuls, attention, "
        "norms, activations, elementwise ops, pooling, upsampling and concatenation at the shapes real models use, "
        "and designed blocks of them (residual, inverted-residual, shuffle, dense, fire, inception, encoder, MLP) "
        "timed whole; fit a latency rule per kind (FLOPs, bytes, overhead) that prices both, and write them with "
        "the machine, torch build, threads and dtype "
        "to a JSON device profile. Resumable: rerun the same command after Ctrl-C.",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads while timing (default: torch's own)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--smoke", action="store_true", help="a tiny kernel set, timed briefly (seconds; for tests)")
    p.add_argument("--output", required=True, help="the device profile JSON to write, e.g. cpu-2t.json")
    p.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="calibrate in N fresh processes, one after another, and keep each point's median (default 1): "
        "identical processes time kernels tens of percent apart on a shared machine",
    )
    p.add_argument(
        "--refit",
        metavar="PROFILE",
        help="time nothing: fit PROFILE's measured points again with this archcost's kinds and fit (after an "
        "upgrade of archcost) and write the result to --output",
    )
    p.add_argument("--restart", action="store_true", help="drop the points a previous, interrupted run kept")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
