"""What the benchmarks share: the real server on a fresh database, the load split over
load-generator processes, the server's CPU and memory, py-spy profiling and the command-line
options every benchmark takes (bench/launch.py, bench/journey.py).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing.pool
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"

Result = TypeVar("Result")


# --- options -----------------------------------------------------------------------------------


def add_load_arguments(
    parser: argparse.ArgumentParser, *, concurrency_help: str, people_help: str
) -> None:
    """--concurrency, --seconds, --database, --clients and --people."""
    parser.add_argument("--concurrency", type=int, default=32, help=concurrency_help)
    parser.add_argument("--seconds", type=float, default=10, help="length of each phase (10)")
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql", "both"], default="both", help="(both)"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=max(1, min(4, (os.cpu_count() or 2) - 1)),
        help="load-generator processes (default: one per spare CPU, at least 1)",
    )
    parser.add_argument("--people", type=int, default=1000, help=people_help)


def add_profile_arguments(parser: argparse.ArgumentParser, *, output_help: str) -> None:
    """--profile, --profile-output, --profile-rate and --profile-native (see ``profiling``)."""
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    parser.add_argument("--profile-output", help=output_help)
    parser.add_argument("--profile-rate", type=int, default=250, help="samples per second")
    parser.add_argument(
        "--profile-native", action="store_true", help="all threads, with native frames"
    )


def backends_of(args: argparse.Namespace) -> list[str]:
    return ["sqlite", "postgresql"] if args.database == "both" else [args.database]


# --- the load and what it cost the server -------------------------------------------------------


def run_on_clients(
    pool: multiprocessing.pool.Pool,
    worker: Callable[[Any], Result],
    job: Callable[[int, int], Any],
    *,
    concurrency: int,
    clients: int,
    server_pid: int,
) -> tuple[list[Result], float, float]:
    """Split ``concurrency`` over the load-generator processes (``job(share, index)`` is one
    process's arguments) and run them: their results, the server's CPU seconds and the wall
    seconds the run took."""
    shares = [
        concurrency // clients + (1 if i < concurrency % clients else 0) for i in range(clients)
    ]
    jobs = [job(share, index) for index, share in enumerate(shares) if share]
    cpu_before, wall_before = cpu_seconds(server_pid), time.perf_counter()
    results = pool.map(worker, jobs)
    cpu_after, wall_after = cpu_seconds(server_pid), time.perf_counter()
    return results, cpu_after - cpu_before, wall_after - wall_before


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the server and its database ---------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    from sqlalchemy import create_engine, text

    from adaptive_lti.db.session import normalise_database_url

    admin_url = os.environ.get("ADAPTIVE_LTI_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    admin = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"adaptive_lti_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def running_server(
    database_url: str, workdir: Path, server_module: str = "adaptive_lti.cli"
) -> Iterator[tuple[str, int, Path]]:
    """``adaptive-lti demo`` on a free port: (url, pid, the demo platform's key file)."""
    log_path = workdir / "server.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADAPTIVE_LTI_")}
    env.update(
        {
            "ADAPTIVE_LTI_ENVIRONMENT": "test",
            "ADAPTIVE_LTI_SECRET_KEY": SECRET_KEY,
            "ADAPTIVE_LTI_LOG_LEVEL": "WARNING",  # no access log: it would be measured too
            "PYTHONUNBUFFERED": "1",
        }
    )
    command = [
        sys.executable, "-m", server_module, "demo", "--host", "127.0.0.1", "--port", "0",
        "--data-dir", str(workdir), "--database-url", database_url,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log_path.read_text()}")
            match = re.search(r"listening on (http://\S+)", log_path.read_text())
            url = match.group(1) if match else None
            time.sleep(0.05)
        yield url, process.pid, workdir / "demo-platform-key.pem"
    finally:
        stop_process(process, signal.SIGINT)
        log_lines = log_path.read_text(errors="replace").splitlines()
        starts = [
            index
            for index, line in enumerate(log_lines)
            if "Traceback" in line or " 500 " in line or "ERROR" in line
        ]
        if starts:
            descriptor, kept = tempfile.mkstemp(prefix="adaptive-lti-bench-server-", suffix=".log")
            os.close(descriptor)
            shutil.copy(log_path, kept)
            last_error = next(
                (line for line in reversed(log_lines) if line and not line.startswith(" ")), ""
            )
            print(
                f"  the server logged {len(starts)} errors (log kept in {kept}); last: {last_error}"
            )


@contextmanager
def profiling(pid: int, args: argparse.Namespace, output: Path) -> Iterator[None]:
    """Sample the server with py-spy: by default only the thread holding the GIL (where Python
    spends CPU); ``--profile-native`` samples every thread with native frames (SQLite, sleeps)."""
    if not args.profile:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    mode = ["--native", "--idle"] if args.profile_native else ["--gil"]
    command = [
        py_spy, "record", "--pid", str(pid), "--rate", str(args.profile_rate),
        "--duration", str(int(args.seconds)), "--format", "raw", "--output", str(output), *mode,
    ]  # fmt: skip
    seconds = args.seconds
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    try:
        yield
    finally:
        recorder.wait(timeout=seconds + 30)


def summarise_profile(path: Path, rate: int, launches: int, top: int = 30) -> None:
    """Print where the server's time went, in milliseconds per launch: inclusive time of the
    project's functions and of the libraries' entry points, then the functions' own time."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total or not launches:
        print("  (no profile samples)")
        return

    def per_launch(samples: int) -> float:
        return samples / rate / launches * 1000

    print(
        f"\n  profile of the server during launches: {total} samples, "
        f"{per_launch(total):.2f} ms sampled per launch"
    )
    print("  inclusive ms/launch  function (the project's, and where it enters libraries)")
    shown = 0
    for frame, count in inclusive.most_common():
        interesting = "adaptive_lti/" in frame or frame.startswith(
            ("PyJWT.", "PyJWS.", "Session.", "Template.", "run_in_threadpool", "solve_dep")
        )
        if interesting and "cli/" not in frame and "__main__" not in frame:
            print(f"  {per_launch(count):8.3f}            {frame}")
            shown += 1
            if shown >= top:
                break
    print("  own ms/launch        function")
    for frame, count in own.most_common(top):
        print(f"  {per_launch(count):8.3f}            {frame}")


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module path from the package)"
    frame = re.sub(r":\d+\)$", ")", frame)
    frame = re.sub(r"\(.*?/site-packages/", "(", frame)
    frame = re.sub(r"\(.*?/src/adaptive_lti/", "(adaptive_lti/", frame)
    return re.sub(r"\(.*?/lib/python3\.\d+/", "(stdlib/", frame)


def run_coroutine(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """Run a load generator's event loop on uvloop when it is installed (as uvicorn runs the
    server), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def stop_process(process: subprocess.Popen[bytes], stop_signal: int = signal.SIGTERM) -> None:
    """Ask a server to stop (uvicorn drains on SIGINT, gunicorn on SIGTERM); kill it after 15 s."""
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
