#!/usr/bin/env python3
"""Measurements behind scripts/bench (run that script, not this file directly).

    bench.py run --binary B --tofu T --example DIR --out DIR [--handshakes N] [--plans N]
    bench.py check BINARY OUT_DIR         (is BINARY a provider that prints a handshake line?)

`run` collects rows (one measure of one subject each) and prints them as one markdown table. A
subject is one provider binary plus how to drive it; comparing with another provider later means
adding a Subject and, if it needs other inputs, a measure function that appends rows.

Only the standard library: the script must run on a fresh machine without pip.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

MAGIC_COOKIE = (
    "TF_PLUGIN_MAGIC_COOKIE",
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
)
# Environment that changes what a provider or OpenTofu does; never inherited by a measured run.
NOISY_ENV = (
    "TF_LOG",
    "TF_LOG_PATH",
    "TF_LOG_PROVIDER",
    "TF_PLUGIN_CACHE_DIR",
    "TF_CLI_CONFIG_FILE",
    "PLUGIN_CLIENT_CERT",
    "PLUGIN_PROTOCOL_VERSIONS",
    "PLUGIN_UNIX_SOCKET_DIR",
    "TF_DISABLE_PLUGIN_TLS",
    "TF_DATA_DIR",
)


class BenchError(Exception):
    """A failure worth one clear line on stderr, not a traceback."""


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Rows and the table


@dataclasses.dataclass
class Row:
    """One line of the table: a measure of a subject, summarised over its samples."""

    subject: str
    measure: str
    unit: str  # "ms", "MiB" or "bytes": decides the formatting of the numbers
    samples: list[float]
    note: str = ""

    def cells(self) -> list[str]:
        if not self.samples:
            return [self.subject, self.measure, "-", "-", "-", "0", self.note]
        fmt = FORMATS[self.unit]
        if len(self.samples) == 1:  # a fact, not a distribution
            return [self.subject, self.measure, fmt(self.samples[0]), "", "", "1", self.note]
        return [
            self.subject,
            self.measure,
            fmt(statistics.median(self.samples)),
            fmt(min(self.samples)),
            fmt(max(self.samples)),
            str(len(self.samples)),
            self.note,
        ]


FORMATS = {
    "ms": lambda v: f"{v:.1f} ms",
    "MiB": lambda v: f"{v:.1f} MiB",
    "bytes": lambda v: f"{int(v):,} B ({v / 2**20:.2f} MiB)",
}


def render(header: list[str], rows: list[Row]) -> str:
    cols = ["Subject", "Measure", "Median", "Min", "Max", "Runs", "Notes"]
    lines = ["# terraform-provider-atmos benchmark", ""]
    lines += [f"- {h}" for h in header]
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row.cells()) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Subjects


@dataclasses.dataclass
class Subject:
    """A provider binary to measure, and what OpenTofu needs to run it in a plan."""

    name: str
    binary: Path
    protocol_versions: str  # what the client offers in PLUGIN_PROTOCOL_VERSIONS
    expect_prefix: str  # the handshake line must start with this
    source: str  # provider source address, e.g. localhost/atmos/atmos
    version: str
    example: Path | None  # a configuration whose `tofu plan` exercises the provider


# ---------------------------------------------------------------------------------------------
# Environment facts for the header


def machine_header(binary: Path, tofu: Path) -> list[str]:
    def first_line(cmd: list[str]) -> str:
        env = {k: v for k, v in os.environ.items() if k not in NOISY_ENV}
        try:
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=60, check=True, env=env
            )
            return out.stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError) as e:
            return f"unknown ({e.__class__.__name__})"

    mem_kib = 0
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    root = Path(__file__).resolve().parent.parent
    commit = first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"Date: {now}; commit {commit}{' (uncommitted changes)' if dirty else ''}",
        f"Machine: {len(os.sched_getaffinity(0))} CPUs ({cpu}), "
        f"{mem_kib / 2**20:.1f} GiB memory, {platform.system()} {platform.release()} "
        f"{platform.machine()}; load average {Path('/proc/loadavg').read_text().split()[0]} "
        "at the end (other work on the machine widens min-max)",
        f"Rust: {first_line(['rustc', '--version'])}; provider binary {binary}",
        f"OpenTofu: {first_line([str(tofu), 'version'])}; Python {platform.python_version()}",
    ]


# ---------------------------------------------------------------------------------------------
# 1. Process start to handshake line


def plugin_env(subject: Subject, client_cert: str | None, socket_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOISY_ENV}
    env[MAGIC_COOKIE[0]] = MAGIC_COOKIE[1]
    env["PLUGIN_PROTOCOL_VERSIONS"] = subject.protocol_versions
    env["PLUGIN_UNIX_SOCKET_DIR"] = str(socket_dir)
    if client_cert is not None:
        env["PLUGIN_CLIENT_CERT"] = client_cert
    return env


def time_to_line(argv: list[str], env: dict[str, str], stderr_log: Path) -> tuple[float, str]:
    """Milliseconds from spawning argv to reading its first stdout line; then stops it."""
    with open(stderr_log, "ab") as err:
        start = time.perf_counter_ns()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env
        )
        try:
            line = read_line(proc, LINE_TIMEOUT)
            elapsed = (time.perf_counter_ns() - start) / 1e6
        finally:
            stop(proc)
    return elapsed, line.decode("utf-8", "replace").strip()


# go-plugin gives up on a plugin that prints no handshake line within a minute; so do we.
LINE_TIMEOUT = 60.0


def read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    """The first stdout line of proc (without waiting for more), or what came before EOF."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise BenchError(f"{proc.args[0]} printed no line within {timeout:g} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM first, so a provider removes its socket directory; SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def client_cert(out: Path) -> tuple[str | None, str]:
    """A P-521 self-signed PEM like the one go-plugin puts in PLUGIN_CLIENT_CERT, made once."""
    pem = out / "client-cert.pem"
    if pem.is_file() and "BEGIN CERTIFICATE" in pem.read_text(encoding="ascii", errors="replace"):
        return pem.read_text(encoding="ascii"), ""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None, "openssl not found: no client certificate, TLS not measured"
    key = out / "client-key.pem"
    cmd = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp521r1",
        "-nodes", "-keyout", str(key), "-out", str(pem), "-days", "3650",
        "-subj", "/O=HashiCorp/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
        "-addext", "basicConstraints=critical,CA:TRUE",
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return None, f"openssl failed ({res.stderr.strip()[:120]}): TLS not measured"
    return pem.read_text(encoding="ascii"), ""


def measure_handshake(subject: Subject, out: Path, runs: int, rows: list[Row]) -> None:
    socket_dir = out / "sockets"
    socket_dir.mkdir(exist_ok=True)
    log = out / "handshake-stderr.log"
    log.write_bytes(b"")
    cert, why_not = client_cert(out)
    variants = [("plaintext", None)]
    if cert is not None:
        variants.append(("with PLUGIN_CLIENT_CERT (mTLS cert generated)", cert))
    for label, pem in variants:
        env = plugin_env(subject, pem, socket_dir)
        samples = []
        # One unmeasured run first: it pages the binary in, which only the very first start pays.
        for i in range(runs + 1):
            ms, line = time_to_line([str(subject.binary)], env, log)
            parts = line.split("|")
            if not line.startswith(subject.expect_prefix) or len(parts) < 6:
                raise BenchError(
                    f"{subject.binary}: unexpected handshake line {line[:80]!r}; stderr in {log}"
                )
            if (pem is not None) != (len(parts[5]) > 50):
                raise BenchError(
                    f"{subject.binary}: server certificate in the line should be {pem is not None}"
                )
            if i > 0:
                samples.append(ms)
        rows.append(
            Row(subject.name, f"start to handshake line, {label}", "ms", samples, "1 warm-up run")
        )
    if cert is None:
        rows.append(Row(subject.name, "start to handshake line, with PLUGIN_CLIENT_CERT", "ms",
                        [], why_not))  # fmt: skip


def measure_spawn_baseline(out: Path, runs: int, rows: list[Row]) -> None:
    """What Popen + readline cost by themselves: the floor under every handshake figure."""
    echo = shutil.which("echo") or "/bin/echo"
    samples = []
    for i in range(runs + 1):
        ms, _ = time_to_line([echo, "1|6|unix|x|grpc|"], dict(os.environ), out / "baseline.log")
        if i > 0:
            samples.append(ms)
    rows.append(Row("baseline", "spawn /bin/echo to its line", "ms", samples,
                    "the Popen + readline floor under the handshake rows"))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 2. tofu plan: wall time and the provider's peak RSS

WRAPPER = """#!/bin/sh
# Written by scripts/bench. Tells the RSS probe this PID, then becomes the provider (exec keeps the
# PID). Opening the FIFO read-write never blocks, and stdout stays free for the handshake line.
echo "$$" 1<>"{fifo}"
exec "{binary}" "$@"
"""


class RssProbe:
    """Samples VmHWM of every process that announces its PID on a FIFO, from a thread.

    VmHWM is the kernel's own high-water mark of resident memory, so sampling every millisecond
    loses at most the growth of the last millisecond before a process exits. Samples count only
    once the process runs `binary` (checked through /proc/PID/exe), which keeps the wrapper
    shell's memory out. The thread is already running when OpenTofu starts a provider: a probe
    process started by the wrapper (a Python start-up each) found the provider already gone.
    """

    def __init__(self, fifo: Path, binary: Path):
        if fifo.exists():
            fifo.unlink()
        os.mkfifo(fifo)
        self.fifo = fifo
        self.target = os.path.realpath(binary)
        # Read-write, so the FIFO never reports end-of-file between writers.
        self.fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.lock = threading.Lock()
        self.active: dict[int, dict] = {}
        self.done: list[dict] = []
        self.closing = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        pending = b""
        while True:
            with self.lock:
                if self.closing and not self.active:
                    return
                busy = bool(self.active)
            ready, _, _ = select.select([self.fd], [], [], 0.001 if busy else 0.02)
            if ready:
                try:
                    pending += os.read(self.fd, 4096)
                except BlockingIOError:
                    pass
                *lines, pending = pending.split(b"\n")
                with self.lock:
                    for line in lines:
                        if line.strip().isdigit():
                            self.active[int(line)] = {"pid": int(line), "hwm_kib": None}
            with self.lock:
                for pid in list(self.active):
                    if not self._sample(self.active[pid]):
                        self.done.append(self.active.pop(pid))

    def _sample(self, rec: dict) -> bool:
        """Updates rec; False once the process is gone or a zombie."""
        proc = Path(f"/proc/{rec['pid']}")
        try:
            if not rec.get("execed"):
                rec["execed"] = os.readlink(proc / "exe") == self.target
                if not rec["execed"]:
                    return True
            status = (proc / "status").read_text(encoding="ascii", errors="replace")
        except OSError:
            return False
        hwm = next((ln for ln in status.splitlines() if ln.startswith("VmHWM:")), None)
        if hwm is None:
            return False  # a zombie has no memory left to report
        rec["hwm_kib"] = int(hwm.split()[1])
        return True

    def take(self, timeout: float = 10.0) -> list[dict]:
        """Waits until every announced process has exited; returns and forgets their records."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if not self.active:
                    done, self.done = self.done, []
                    return done
                if time.monotonic() > deadline:
                    raise BenchError(f"provider processes {sorted(self.active)} outlived `tofu`")
            time.sleep(0.01)

    def close(self) -> None:
        with self.lock:
            self.closing = True
            self.active.clear()
        self.thread.join(timeout=5)
        os.close(self.fd)
        self.fifo.unlink(missing_ok=True)


def install(subject: Subject, dest: Path, executable: str | None) -> Path:
    """Fresh mirror + tofurc + copy of the example in dest; returns the tofurc path.

    executable is the text of a wrapper script to install instead of the binary, or None.
    """
    assert subject.example is not None
    if dest.exists():
        shutil.rmtree(dest)
    host, namespace, name = subject.source.split("/")
    osname = platform.system().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    if arch is None:
        raise BenchError(f"unsupported CPU {platform.machine()}")
    package = dest / "mirror" / host / namespace / name / subject.version / f"{osname}_{arch}"
    package.mkdir(parents=True)
    exe = package / f"terraform-provider-{name}_v{subject.version}"
    if executable is None:
        shutil.copy2(subject.binary, exe)
    else:
        exe.write_text(executable, encoding="utf-8")
        exe.chmod(0o755)
    tofurc = dest / "tofurc"
    tofurc.write_text(
        "# Written by scripts/bench: localhost providers from the local mirror only.\n"
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{dest / "mirror"}"\n'
        '    include = ["localhost/*/*"]\n  }\n'
        '  direct {\n    exclude = ["localhost/*/*"]\n  }\n}\n',
        encoding="utf-8",
    )
    shutil.copytree(subject.example, dest / "work")
    return tofurc


def tofu_env(tofurc: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOISY_ENV}
    env.update(TF_CLI_CONFIG_FILE=str(tofurc), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    return env


def run_tofu(tofu: Path, args: list[str], cwd: Path, env: dict[str, str], log: Path):
    """Runs tofu; returns (wall ms, peak RSS in KiB of tofu and everything it waited for)."""
    with open(log, "wb") as out:
        start = time.perf_counter_ns()
        proc = subprocess.Popen(
            [str(tofu), f"-chdir={cwd}", *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = (time.perf_counter_ns() - start) / 1e6
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise BenchError(f"tofu {args[0]} failed ({proc.returncode}); log {log}:\n{tail}")
    return elapsed, usage.ru_maxrss


def measure_plan(subject: Subject, tofu: Path, out: Path, plans: int, rows: list[Row]) -> None:
    if subject.example is None:
        return
    plan = ["plan", "-input=false"]
    # Wall time with the bare binary, so the probe's work is not in it.
    plain = out / "plan-plain"
    env = tofu_env(install(subject, plain, None))
    say(f"{subject.name}: tofu init + {plans} plans (bare binary, wall time)")
    run_tofu(tofu, ["init", "-input=false"], plain / "work", env, out / "init-plain.log")
    run_tofu(tofu, plan, plain / "work", env, out / "plan-plain.log")  # warm-up
    walls, tofu_rss = [], []
    for _ in range(plans):
        ms, rss = run_tofu(tofu, plan, plain / "work", env, out / "plan-plain.log")
        walls.append(ms)
        tofu_rss.append(rss / 1024)
    rows.append(Row(subject.name, "`tofu plan` wall time", "ms", walls, "1 warm-up plan"))
    # The same without AutoMTLS: the difference is what the per-process TLS setup costs a plan.
    env_plain = dict(env, TF_DISABLE_PLUGIN_TLS="1")
    walls = []
    for _ in range(plans):
        ms, _ = run_tofu(tofu, plan, plain / "work", env_plain, out / "plan-plain.log")
        walls.append(ms)
    rows.append(Row(subject.name, "`tofu plan` wall time, TF_DISABLE_PLUGIN_TLS=1", "ms", walls,
                    "plaintext gRPC: shows what TLS setup costs a plan"))  # fmt: skip

    # Peak RSS through the wrapper, which announces each provider process to the probe.
    probed = out / "plan-rss"
    fifo = out / "rss.fifo"
    wrapper = WRAPPER.format(fifo=fifo, binary=subject.binary.resolve())
    env = tofu_env(install(subject, probed, wrapper))
    say(f"{subject.name}: tofu init + {plans} plans (RSS probe)")
    probe = RssProbe(fifo, subject.binary)
    try:
        run_tofu(tofu, ["init", "-input=false"], probed / "work", env, out / "init-rss.log")
        probe.take()  # init does not serve anything worth measuring
        peaks, counts = [], []
        for _ in range(plans):
            run_tofu(tofu, plan, probed / "work", env, out / "plan-rss.log")
            seen = [r["hwm_kib"] for r in probe.take() if r["hwm_kib"] is not None]
            if not seen:
                raise BenchError(f"no provider process was probed; see {out / 'plan-rss.log'}")
            peaks.append(max(seen) / 1024)
            counts.append(len(seen))
    finally:
        probe.close()
    rows.append(
        Row(subject.name, "provider peak RSS during `tofu plan`", "MiB", peaks,
            f"VmHWM, max over the {statistics.median(counts):g} provider processes a plan starts")
    )  # fmt: skip
    rows.append(
        Row("OpenTofu", "tofu peak RSS during `tofu plan` (for scale)", "MiB", tofu_rss,
            "ru_maxrss of tofu's process tree")
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 3. Binary size


def measure_size(subject: Subject, rows: list[Row]) -> None:
    size = subject.binary.stat().st_size
    note = "release profile"
    file_cmd = shutil.which("file")
    if file_cmd:
        desc = subprocess.run([file_cmd, "-b", str(subject.binary)], capture_output=True, text=True)
        if "not stripped" in desc.stdout:
            note += ", NOT stripped"
        elif "stripped" in desc.stdout:
            note += ", stripped"
    rows.append(Row(subject.name, "binary size", "bytes", [size], note))


# ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    binary = Path(args.binary).resolve()
    tofu = Path(args.tofu).resolve()
    for path, what in ((binary, "provider binary"), (tofu, "tofu")):
        if not os.access(path, os.X_OK):
            raise BenchError(f"{what} {path} is missing or not executable")
    atmos = Subject(
        name="atmos (this crate)",
        binary=binary,
        protocol_versions="6",
        expect_prefix="1|6|unix|",
        source="localhost/atmos/atmos",
        version="0.1.0",
        example=Path(args.example).resolve(),
    )
    rows: list[Row] = []
    say(f"handshake: {args.handshakes} runs per variant")
    measure_spawn_baseline(out, args.handshakes, rows)
    measure_handshake(atmos, out, args.handshakes, rows)
    measure_plan(atmos, tofu, out, args.plans, rows)
    measure_size(atmos, rows)

    table = render(machine_header(binary, tofu), rows)
    (out / "latest.md").write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    say(f"written to {out / 'latest.md'}")
    return 0


def check(binary: Path, out: Path) -> None:
    """Fails unless binary prints a v6 handshake line: guards against a stale or foreign file."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "sockets").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in NOISY_ENV}
    env.update({MAGIC_COOKIE[0]: MAGIC_COOKIE[1], "PLUGIN_PROTOCOL_VERSIONS": "6"})
    env["PLUGIN_UNIX_SOCKET_DIR"] = str(out / "sockets")
    _, line = time_to_line([str(binary)], env, out / "check-stderr.log")
    if not line.startswith("1|6|unix|"):
        raise BenchError(f"{binary} printed {line[:60]!r}, not a handshake line")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--binary", required=True)
    r.add_argument("--tofu", required=True)
    r.add_argument("--example", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--handshakes", type=int, default=20)
    r.add_argument("--plans", type=int, default=5)
    c = sub.add_parser("check")
    c.add_argument("binary")
    c.add_argument("out")
    args = parser.parse_args()
    try:
        if args.cmd == "check":
            check(Path(args.binary), Path(args.out))
            return 0
        return run(args)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
