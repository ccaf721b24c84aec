#!/usr/bin/env python3
"""Measurements behind scripts/bench (run that script, not this file directly).

    bench.py run --binary B --tofu T --example DIR --out DIR [--handshakes N] [--plans N]
                 [--sizes 1,100,1000] [--docs docs/benchmarks.md]
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
import http.client
import http.server
import json
import os
import platform
import select
import shutil
import signal
import socket
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
    "ms": lambda v: f"{v:.1f} ms" if v < 10_000 else f"{v / 1000:.2f} s",
    "calls": lambda v: f"{v:g}",
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


def install(
    subject: Subject, dest: Path, executable: str | None, example: Path | None = None
) -> Path:
    """Fresh mirror + tofurc + copy of the example (or of `example`) in dest; returns the tofurc.

    executable is the text of a wrapper script to install instead of the binary, or None.
    """
    example = example or subject.example
    assert example is not None
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
    shutil.copytree(example, dest / "work")
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
# 4. Plans at scale: N secrets read from one SOPS file, the floor, the Go sops provider, SSM


def secret_names(n: int) -> list[str]:
    return [f"S{i:04d}" for i in range(1, n + 1)]


# OpenTofu's range() stops at 1024 elements; the sizes stay below that.
NAMES_LOCAL = 'locals {{\n  names = toset([for i in range(1, {n} + 1) : format("S%04d", i)])\n}}\n'

ATMOS_TF_HEAD = """# Written by scripts/bench.
terraform {
  required_providers {
    atmos = { source = "localhost/atmos/atmos" }
  }
}

provider "atmos" {}

"""

SINGLE_READS_TF = """data "atmos_secret" "s" {
  for_each = local.names
  name     = each.key
  stack    = "bench"
}

output "digest" {
  value     = sha256(join(",", [for k in local.names : data.atmos_secret.s[k].value]))
  sensitive = true
}
"""

BATCHED_READ_TF = """data "atmos_secrets" "all" {
  stack = "bench"
}

output "digest" {
  value     = sha256(join(",", [for k in local.names : data.atmos_secrets.all.values[k]]))
  sensitive = true
}
"""

FLOOR_TF = """# Written by scripts/bench: the same graph shape with a built-in resource and no provider.
resource "terraform_data" "s" {
  for_each = local.names
  input    = each.key
}

output "digest" {
  value     = sha256(join(",", [for k in local.names : terraform_data.s[k].input]))
  sensitive = true
}
"""

SOPS_FILE_TF = """# Written by scripts/bench: carlpett/sops reading the same file once per name.
terraform {
  required_providers {
    sops = { source = "localhost/carlpett/sops" }
  }
}

data "sops_file" "s" {
  for_each    = local.names
  source_file = "secrets/bench.enc.yaml"
}

output "digest" {
  value     = sha256(join(",", [for k in local.names : data.sops_file.s[k].data[k]]))
  sensitive = true
}
"""

ATMOS_YAML = """# Written by scripts/bench: one stack, "bench", whose secrets are all stack-scoped.
base_path: "."
stacks:
  base_path: stacks
  included_paths: ["**/*"]
  name_pattern: "{{stage}}"
{stores}"""

SOPS_STORE = """secrets:
  providers:
    bench-sops:
      kind: sops/age
      spec:
        path: secrets
        age_key_file: keys/bench.agekey
"""

SSM_STORE = """stores:
  ssm:
    kind: aws/ssm
    secret: true
    options: {{ region: us-east-1, endpoint: "{endpoint}", prefix: /atmos }}
"""


def write_stack(ws: Path, n: int, holder: str) -> None:
    """stacks/bench.yaml declaring S0001.. at stack level, each `holder` (e.g. `sops: x`)."""
    lines = ["vars:", "  stage: bench", "secrets:", "  vars:"]
    for name in secret_names(n):
        lines += [f"    {name}:", f"      {holder}"]
    (ws / "stacks").mkdir(parents=True, exist_ok=True)
    (ws / "stacks" / "bench.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def age_key(out: Path, cache_bin: Path) -> tuple[Path, str]:
    """An age key made with the real age-keygen, once; returns (key file, recipient)."""
    key = out / "bench.agekey"
    if not key.is_file():
        res = subprocess.run([str(cache_bin / "age-keygen"), "-o", str(key)],
                             capture_output=True, text=True)  # fmt: skip
        if res.returncode != 0:
            raise BenchError(f"age-keygen failed: {res.stderr.strip()[:200]}")
    for line in key.read_text(encoding="ascii").splitlines():
        if line.startswith("# public key: "):
            return key, line.split(": ", 1)[1].strip()
    raise BenchError(f"{key}: no public key line")


def sops_workspace(out: Path, cache_bin: Path, n: int) -> Path:
    """A workspace with N stack-scoped secrets in one file encrypted by the real sops.

    It holds main-single.tf / main-batched.tf / main-floor.tf / main-sops-file.tf variants;
    variant() copies one of them in as main.tf.
    """
    ws = out / "workspaces" / f"sops-{n}"
    if ws.exists():
        shutil.rmtree(ws)
    (ws / "secrets").mkdir(parents=True)
    (ws / "keys").mkdir()
    key, recipient = age_key(out, cache_bin)
    shutil.copy2(key, ws / "keys" / "bench.agekey")
    (ws / "atmos.yaml").write_text(ATMOS_YAML.format(stores=SOPS_STORE), encoding="utf-8")
    write_stack(ws, n, "sops: bench-sops")
    plain = ws / "plain.yaml"
    # Values of a realistic size (48 characters), different in every run.
    plain.write_text(
        "".join(f"{name}: v-{os.urandom(22).hex()}\n" for name in secret_names(n)),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    res = subprocess.run(
        [str(cache_bin / "sops"), "--encrypt", "--age", recipient, "--input-type", "yaml",
         "--output-type", "yaml", str(plain)],
        capture_output=True, text=True, cwd=ws, env=env,
    )  # fmt: skip
    plain.unlink()
    if res.returncode != 0:
        raise BenchError(f"sops --encrypt failed: {res.stderr.strip()[:300]}")
    (ws / "secrets" / "bench.enc.yaml").write_text(res.stdout, encoding="utf-8")
    names = NAMES_LOCAL.format(n=n)
    (ws / "variants").mkdir()
    for variant, text in (
        ("single", ATMOS_TF_HEAD + names + "\n" + SINGLE_READS_TF),
        ("batched", ATMOS_TF_HEAD + names + "\n" + BATCHED_READ_TF),
        ("floor", names + "\n" + FLOOR_TF),
        ("sops-file", names + "\n" + SOPS_FILE_TF),
    ):
        (ws / "variants" / f"{variant}.tf").write_text(text, encoding="utf-8")
    return ws


def variant(ws: Path, name: str, dest: Path) -> Path:
    """A copy of workspace ws with variants/NAME.tf as its only configuration, at dest."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(ws, dest, ignore=shutil.ignore_patterns("variants", ".terraform*"))
    shutil.copy2(ws / "variants" / f"{name}.tf", dest / "main.tf")
    return dest


@dataclasses.dataclass
class Series:
    walls: list[float]
    peaks: list[float]  # provider VmHWM, MiB (empty without a provider)
    extra: list[dict]  # what the after-plan hook returned, one per timed plan


def plan_series(
    subject: Subject | None,
    tofu: Path,
    out: Path,
    label: str,
    ws: Path,
    runs: int,
    env_extra: dict[str, str] | None = None,
    before=None,
    after=None,
    rss: bool = True,
) -> Series:
    """init + 1 warm-up plan + `runs` timed plans of workspace ws; then as many with the RSS probe.

    subject None means no provider: only the built-in terraform_data (the floor).
    before/after are called around each timed plan (after's results are kept in Series.extra).
    """
    base = out / "runs" / label
    plan = ["plan", "-input=false", "-lock=false"]
    log = out / "runs" / f"{label}.log"

    def setup(dest: Path, executable: str | None) -> dict[str, str]:
        if subject is None:
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            shutil.copytree(ws, dest / "work")
            tofurc = dest / "tofurc"
            tofurc.write_text("# Written by scripts/bench: no providers.\n", encoding="utf-8")
        else:
            tofurc = install(subject, dest, executable, ws)
        env = tofu_env(tofurc)
        env.update(env_extra or {})
        run_tofu(tofu, ["init", "-input=false"], dest / "work", env, log)
        return env

    env = setup(base / "plain", None)
    say(f"{label}: 1 warm-up + {runs} plans")
    run_tofu(tofu, plan, base / "plain" / "work", env, log)
    walls, extra = [], []
    for _ in range(runs):
        if before:
            before()
        ms, _ = run_tofu(tofu, plan, base / "plain" / "work", env, log)
        walls.append(ms)
        if after:
            extra.append(after())
    peaks: list[float] = []
    if subject is not None and rss:
        fifo = out / "rss.fifo"
        wrapper = WRAPPER.format(fifo=fifo, binary=subject.binary.resolve())
        probe = RssProbe(fifo, subject.binary)
        try:
            env = setup(base / "rss", wrapper)
            probe.take()
            say(f"{label}: {runs} plans with the RSS probe")
            for _ in range(runs):
                run_tofu(tofu, plan, base / "rss" / "work", env, log)
                seen = [r["hwm_kib"] for r in probe.take() if r["hwm_kib"] is not None]
                if not seen:
                    raise BenchError(f"{label}: no provider process was probed; see {log}")
                peaks.append(max(seen) / 1024)
        finally:
            probe.close()
    shutil.rmtree(base, ignore_errors=True)  # N=1000 copies add up
    return Series(walls, peaks, extra)


def runs_for(n: int, plans: int) -> int:
    """Fewer runs for the biggest workspaces: each plan there takes seconds on a busy machine."""
    return plans if n < 1000 else max(1, min(plans, 3))


def measure_sops_scale(
    atmos: Subject, sops_go: Subject | None, sops_go_why: str, tofu: Path, out: Path,
    sizes: list[int], plans: int, rows: list[Row], facts: dict,
) -> None:  # fmt: skip
    cache_bin = tofu.parent
    for n in sizes:
        ws = sops_workspace(out, cache_bin, n)
        runs = runs_for(n, plans)
        s = plan_series(atmos, tofu, out, f"sops-{n}-single", variant(ws, "single", out / "v"),
                        runs)  # fmt: skip
        rows.append(Row(atmos.name, f"`tofu plan`, N={n} SOPS, `data \"atmos_secret\"` x N",
                        "ms", s.walls, "one SOPS file; for_each over the names"))  # fmt: skip
        rows.append(Row(atmos.name, f"provider peak RSS, N={n} SOPS, `atmos_secret` x N", "MiB",
                        s.peaks, "VmHWM, max over the plan's provider processes"))  # fmt: skip
        facts[("single", n)] = s
        s = plan_series(atmos, tofu, out, f"sops-{n}-batched", variant(ws, "batched", out / "v"),
                        runs)  # fmt: skip
        rows.append(Row(atmos.name, f"`tofu plan`, N={n} SOPS, one `data \"atmos_secrets\"`",
                        "ms", s.walls, "the batched read, for comparison"))  # fmt: skip
        rows.append(Row(atmos.name, f"provider peak RSS, N={n} SOPS, one `atmos_secrets`", "MiB",
                        s.peaks, "VmHWM"))  # fmt: skip
        facts[("batched", n)] = s
        s = plan_series(None, tofu, out, f"floor-{n}", variant(ws, "floor", out / "v"), runs)
        rows.append(Row("floor (no provider)", f"`tofu plan`, N={n} `terraform_data`", "ms",
                        s.walls, "built-in resource, same for_each and output"))  # fmt: skip
        facts[("floor", n)] = s
        if sops_go is None:
            rows.append(Row("carlpett/sops (Go)", f"`tofu plan`, N={n} `data \"sops_file\"`",
                            "ms", [], sops_go_why))  # fmt: skip
            continue
        key = (out / "bench.agekey").resolve()
        s = plan_series(sops_go, tofu, out, f"sops-go-{n}", variant(ws, "sops-file", out / "v"),
                        runs, {"SOPS_AGE_KEY_FILE": str(key)})  # fmt: skip
        rows.append(Row(sops_go.name, f"`tofu plan`, N={n} `data \"sops_file\"`", "ms", s.walls,
                        "same file, read once per name"))  # fmt: skip
        rows.append(Row(sops_go.name, f"provider peak RSS, N={n} `sops_file`", "MiB", s.peaks,
                        "VmHWM"))  # fmt: skip
        facts[("sops_go", n)] = s
    shutil.rmtree(out / "v", ignore_errors=True)


# --- the Go sops provider, if the Go module proxy serves it

SOPS_GO_MODULE = "github.com/carlpett/terraform-provider-sops"


def sops_go_provider(out: Path) -> tuple[Subject | None, str]:
    """Builds carlpett/terraform-provider-sops from the Go module proxy, or says why not."""
    go = shutil.which("go")
    if go is None:
        return None, "not measured: `go` not found"
    gopath = out / "gopath"
    env = dict(os.environ, GOPATH=str(gopath), GOFLAGS="-mod=mod", GO111MODULE="on")
    res = subprocess.run([go, "mod", "download", "-json", f"{SOPS_GO_MODULE}@latest"],
                         capture_output=True, text=True, env=env, cwd=out, timeout=300)  # fmt: skip
    text = res.stdout + res.stderr
    if res.returncode != 0:
        if "403" in text:
            return None, "not available here (Go module proxy 403)"
        return None, f"not available here (go mod download: {text.strip()[:120]})"
    info = json.loads(res.stdout)
    version = info["Version"].lstrip("v")
    binary = out / "bin" / "terraform-provider-sops"
    res = subprocess.run(
        [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "."],
        capture_output=True, text=True, env=dict(env, CGO_ENABLED="0"), cwd=info["Dir"],
        timeout=1800,
    )  # fmt: skip
    if res.returncode != 0:
        return None, f"build failed: {res.stderr.strip()[:160]}"
    return Subject(
        name=f"carlpett/sops {version} (Go)", binary=binary, protocol_versions="5",
        expect_prefix="1|5|", source="localhost/carlpett/sops", version=version, example=None,
    ), ""  # fmt: skip


# --- SSM on moto, through a counting proxy


class CountingProxy:
    """An HTTP/1.1 forwarder to 127.0.0.1:upstream that counts requests by X-Amz-Target."""

    HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length",
           "proxy-connection", "server", "date"}  # fmt: skip

    def __init__(self, upstream: int):
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self.forward()

            def do_POST(self) -> None:
                self.forward()

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target") or f"{self.command} {self.path}"
                with proxy.lock:
                    proxy.counts[target] = proxy.counts.get(target, 0) + 1
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy.HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in proxy.HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> dict[str, int]:
        with self.lock:
            counts, self.counts = self.counts, {}
        return counts

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws_json(port: int, service: str, target: str, body: dict) -> tuple[int, bytes]:
    """One unsigned AWS JSON 1.1 call; moto routes it by the Authorization credential scope."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/", body=json.dumps(body), headers={
        "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/"
                         "aws4_request, SignedHeaders=host, Signature=0",
        "X-Amz-Target": target,
        "Content-Type": "application/x-amz-json-1.1",
    })  # fmt: skip
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def start_moto(cache_bin: Path, out: Path) -> tuple[subprocess.Popen, int]:
    home = out / "moto-home"
    home.mkdir(exist_ok=True)
    port = free_port()
    log = open(out / "moto.log", "wb")
    proc = subprocess.Popen(
        [str(cache_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, HOME=str(home)),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"moto_server exited ({proc.returncode}); see {out / 'moto.log'}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/moto-api/")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise BenchError("moto_server did not answer within 120 s")


def measure_ssm(atmos: Subject, tofu: Path, out: Path, root: Path, plans: int, rows: list[Row],
                facts: dict, n: int = 100) -> None:  # fmt: skip
    subject = f"{atmos.name}, aws/ssm on moto"
    if not (root / "src" / "store" / "ssm.rs").is_file():
        rows.append(Row(subject, f"`tofu plan` + backend calls, N={n}", "ms", [],
                        "SSM store not merged yet"))  # fmt: skip
        return
    cache_bin = tofu.parent
    if not os.access(cache_bin / "moto_server", os.X_OK):
        rows.append(Row(subject, f"`tofu plan` + backend calls, N={n}", "ms", [],
                        "moto_server not found: run scripts/peers moto"))  # fmt: skip
        return
    say(f"ssm: starting moto, seeding {n} SecureString parameters")
    moto, port = start_moto(cache_bin, out)
    proxy = CountingProxy(port)
    try:
        for name in secret_names(n):
            status, data = aws_json(port, "ssm", "AmazonSSM.PutParameter", {
                "Name": f"/atmos/bench/{name}", "Value": f"v-{os.urandom(22).hex()}",
                "Type": "SecureString", "Overwrite": True,
            })  # fmt: skip
            if status != 200:
                raise BenchError(f"moto PutParameter: {status} {data[:200]!r}")
        ws = out / "workspaces" / f"ssm-{n}"
        if ws.exists():
            shutil.rmtree(ws)
        ws.mkdir(parents=True)
        endpoint = f"http://127.0.0.1:{proxy.port}"
        stores = SSM_STORE.format(endpoint=endpoint)
        (ws / "atmos.yaml").write_text(ATMOS_YAML.format(stores=stores), encoding="utf-8")
        write_stack(ws, n, "store: ssm")
        names = NAMES_LOCAL.format(n=n)
        (ws / "variants").mkdir()
        (ws / "variants" / "single.tf").write_text(ATMOS_TF_HEAD + names + "\n" + SINGLE_READS_TF)
        (ws / "variants" / "batched.tf").write_text(ATMOS_TF_HEAD + names + "\n" + BATCHED_READ_TF)
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_ENDPOINT_URL"):
            os.environ.pop(var, None)
        for kind, block in (("batched", "one `data \"atmos_secrets\"`"),
                            ("single", f"`data \"atmos_secret\"` x {n}")):  # fmt: skip
            s = plan_series(atmos, tofu, out, f"ssm-{n}-{kind}", variant(ws, kind, out / "v"),
                            plans, env, before=proxy.take, after=proxy.take)  # fmt: skip
            totals = [sum(c.values()) for c in s.extra]
            split: dict[str, list[int]] = {}
            for c in s.extra:
                for target, k in c.items():
                    split.setdefault(target, []).append(k)
            note = ", ".join(f"{t}: {statistics.median(v):g}" for t, v in sorted(split.items()))
            rows.append(Row(subject, f"`tofu plan`, N={n} SSM, {block}", "ms", s.walls,
                            "moto through a counting proxy"))  # fmt: skip
            rows.append(Row(subject, f"backend API calls per plan, N={n}, {block}", "calls",
                            [float(t) for t in totals], f"by X-Amz-Target: {note}"))  # fmt: skip
            rows.append(Row(subject, f"provider peak RSS, N={n} SSM, {block}", "MiB", s.peaks,
                            "VmHWM"))  # fmt: skip
            facts[("ssm", kind)] = (s, totals)
    finally:
        proxy.close()
        stop(moto)
        shutil.rmtree(out / "v", ignore_errors=True)


# ---------------------------------------------------------------------------------------------


def med(samples: list[float]) -> float | None:
    return statistics.median(samples) if samples else None


def targets(rows: list[Row], facts: dict, sizes: list[int], sops_go_why: str) -> list[list[str]]:
    """The issue's targets, each with where we stand: [target, figure, verdict]."""
    out: list[list[str]] = []

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "**missed**")

    for row in rows:
        if row.measure.startswith("start to handshake line") and row.samples:
            m = statistics.median(row.samples)
            variant = "mTLS" if "CLIENT_CERT" in row.measure else "plaintext"
            out.append([f"handshake <= 10 ms ({variant})", f"{m:.1f} ms",
                        verdict(m <= 10)])  # fmt: skip
    big = max(sizes)
    single, floor = facts.get(("single", big)), facts.get(("floor", big))
    sops_go = facts.get(("sops_go", big))
    if single and sops_go:
        a, b = med(single.walls), med(sops_go.walls)
        out.append([f"plan(N={big}, SOPS) <= 0.5x carlpett/sops", f"{a:.0f} ms vs {b:.0f} ms = "
                    f"{a / b:.2f}x", verdict(a <= 0.5 * b)])  # fmt: skip
    else:
        out.append([f"plan(N={big}, SOPS) <= 0.5x carlpett/sops", sops_go_why or "-",
                    "not measured"])  # fmt: skip
    if single and floor:
        a, b = med(single.walls), med(floor.walls)
        out.append([f"plan(N={big}, SOPS) <= 1.5x floor", f"{a:.0f} ms vs {b:.0f} ms = "
                    f"{a / b:.2f}x", verdict(a <= 1.5 * b)])  # fmt: skip
        batched = facts.get(("batched", big))
        if batched:
            c = med(batched.walls)
            out.append(["(same, one `atmos_secrets` instead of N reads)",
                        f"{c:.0f} ms = {c / b:.2f}x floor", verdict(c <= 1.5 * b)])  # fmt: skip
    if single and single.peaks:
        m = max(single.peaks)
        out.append([f"provider peak RSS <= 30 MB at N={big}", f"{m:.1f} MiB (max of runs)",
                    verdict(m * 2**20 <= 30e6)])  # fmt: skip
    ssm = facts.get(("ssm", "batched"))
    if ssm:
        calls = max(ssm[1])
        out.append(["SSM calls <= ceil(N/10) = 10 at N=100 (`atmos_secrets`)", f"{calls:g}",
                    verdict(calls <= 10)])  # fmt: skip
        single_ssm = facts.get(("ssm", "single"))
        if single_ssm:
            calls = max(single_ssm[1])
            out.append(["SSM calls <= 10 at N=100 (100 x `atmos_secret`)", f"{calls:g}",
                        verdict(calls <= 10)])  # fmt: skip
    else:
        out.append(["SSM calls <= ceil(N/10)", "-", "not measured"])
    return out


def render_targets(items: list[list[str]]) -> str:
    lines = ["| Target | Where we stand | Verdict |", "|---|---|---|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in item) + " |" for item in items]
    return "\n".join(lines) + "\n"


HOW_MEASURED = """\
- **Handshake**: wall time from spawning the provider (as go-plugin does: magic cookie,
  `PLUGIN_PROTOCOL_VERSIONS`, a socket directory) to reading its handshake line on stdout, after one
  unmeasured start; with and without `PLUGIN_CLIENT_CERT` (a P-521 certificate like OpenTofu's).
- **Plans**: `tofu plan -input=false -lock=false` after `tofu init` and one unmeasured plan, in a
  generated workspace: one stack `bench` declaring N stack-scoped secrets `S0001`.. in one SOPS
  file encrypted to a fresh age key by the real `sops`; `main.tf` reads them with
  `data "atmos_secret"` and `for_each` over the set of names (or one `data "atmos_secrets"`), and
  outputs a sensitive sha256 of all values. The floor is the same `for_each` over built-in
  `terraform_data` resources: no provider at all. N=1000 runs fewer plans than the others.
- **Provider peak RSS**: the provider is installed behind a wrapper script that reports its PID
  and execs the binary; a thread samples `VmHWM` in `/proc/PID/status` every millisecond. The
  figure is the largest over the provider processes of one plan; those plans are not timed.
- **SSM**: moto (`moto_server`) seeded with N `SecureString` parameters; the provider reaches it
  through a counting HTTP proxy in the bench (`endpoint` option of the store), which counts
  requests per plan by `X-Amz-Target`.
- **carlpett/terraform-provider-sops**: built from the Go module proxy when it serves the module,
  read with `data "sops_file"` once per name from the same file.
- **Binary size**: the release binary as built (`strip = true` in the release profile).
"""


def docs_block(header: list[str], table: str, target_table: str, load_start: str) -> str:
    return "\n".join([
        "<!-- bench:begin (written by scripts/bench; edit outside these markers) -->",
        "## Latest run", "",
        *[f"- {h}" for h in header],
        f"- Load average at the start: {load_start}. The machine was shared with other builds:"
        " the figures are slower and wider than on an idle machine.", "",
        table.split("\n\n", 2)[2] if table.count("\n\n") >= 2 else table,
        "## Targets", "", target_table,
        "## How measured", "", HOW_MEASURED,
        "<!-- bench:end -->",
    ]) + "\n"  # fmt: skip


def write_docs(path: Path, block: str) -> None:
    """Replaces the marked block of path (or writes the file with a title and the block)."""
    begin, end = "<!-- bench:begin", "<!-- bench:end -->"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if begin in text and end in text:
            i, j = text.index(begin), text.index(end) + len(end) + 1
            path.write_text(text[:i] + block + text[j:], encoding="utf-8")
            return
    path.write_text("# Benchmarks\n\nRun `scripts/bench` to measure again.\n\n" + block,
                    encoding="utf-8")  # fmt: skip


def tool_versions(tofu: Path) -> str:
    cache_bin = tofu.parent

    def version(cmd: list[str]) -> str:
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            lines = (res.stdout or res.stderr).strip().splitlines()
            return lines[0] if lines else "unknown"
        except (OSError, subprocess.SubprocessError):
            return "not found"

    moto = "not found"
    moto_bin = cache_bin / "moto_server"
    if moto_bin.is_file():
        shebang = moto_bin.read_text(encoding="utf-8", errors="replace").splitlines()[0]
        if shebang.startswith("#!"):
            moto = version([shebang[2:].strip(), "-c", "import moto; print(moto.__version__)"])
    go = version(["go", "version"]) if shutil.which("go") else "not found"
    return (f"sops: {version([str(cache_bin / 'sops'), '--disable-version-check', '--version'])}"
            f"; age: {version([str(cache_bin / 'age'), '--version'])}; moto: {moto}; {go}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    binary = Path(args.binary).resolve()
    tofu = Path(args.tofu).resolve()
    root = Path(__file__).resolve().parent.parent
    load_start = Path("/proc/loadavg").read_text().split()[0]
    for path, what in ((binary, "provider binary"), (tofu, "tofu")):
        if not os.access(path, os.X_OK):
            raise BenchError(f"{what} {path} is missing or not executable")
    sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    if any(n < 1 or n > 1024 for n in sizes):
        raise BenchError("--sizes: each N must be within 1..1024 (OpenTofu's range() limit)")
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
    facts: dict = {}
    say("carlpett/terraform-provider-sops: asking the Go module proxy")
    sops_go, sops_go_why = sops_go_provider(out)
    say(f"handshake: {args.handshakes} runs per variant")
    measure_spawn_baseline(out, args.handshakes, rows)
    measure_handshake(atmos, out, args.handshakes, rows)
    if sops_go is not None:
        measure_handshake(sops_go, out, args.handshakes, rows)
    else:
        rows.append(Row("carlpett/sops (Go)", "start to handshake line", "ms", [], sops_go_why))
    measure_plan(atmos, tofu, out, args.plans, rows)
    measure_sops_scale(atmos, sops_go, sops_go_why, tofu, out, sizes, args.plans, rows, facts)
    measure_ssm(atmos, tofu, out, root, args.plans, rows, facts)
    measure_size(atmos, rows)
    if sops_go is not None:
        measure_size(sops_go, rows)
    else:
        rows.append(Row("carlpett/sops (Go)", "binary size", "bytes", [], sops_go_why))
    rows.append(Row(atmos.name, "binary size, SOPS-only build", "bytes", [],
                    "no cargo feature for a SOPS-only build yet"))  # fmt: skip

    header = machine_header(binary, tofu) + [f"Tools: {tool_versions(tofu)}"]
    table = render(header, rows)
    target_table = render_targets(targets(rows, facts, sizes, sops_go_why))
    report = table + "\n## Targets\n\n" + target_table
    (out / "latest.md").write_text(report, encoding="utf-8")
    sys.stdout.write(report)
    say(f"written to {out / 'latest.md'}")
    if args.docs:
        docs = Path(args.docs)
        write_docs(docs, docs_block(header, table, target_table, load_start))
        say(f"written to {docs}")
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
    r.add_argument("--sizes", default="1,100,1000", help="N values for the SOPS plans")
    r.add_argument("--docs", help="also write the results into this markdown file")
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
