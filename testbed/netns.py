"""Simulated hosts for tests: Linux network namespaces joined by veth pairs with link-local addresses.

Every namespace is named ``cotest-<pid>-<host>`` (the pid of the test process), every address is a
169.254.x.x address made here, and :meth:`Hosts.close` kills the processes started in them by pid and
deletes the namespaces by name (which removes their veths and the root-side ends with them). Nothing
here routes to any other address: each namespace only has its own /30 links and loopback.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

PREFIX = "cotest-"
_CMD_TIMEOUT_S = 15

# Runs a module after naming the (private, ``unshare --uts``) host: ``python -c BOOT <hostname> <module>``.
_BOOT = (
    "import runpy, socket, sys; socket.sethostname(sys.argv[1]); module = sys.argv[2]; "
    "sys.argv = [module]; runpy.run_module(module, run_name='__main__', alter_sys=True)"
)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=_CMD_TIMEOUT_S, check=check)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here (None when they can): needs root, ``ip`` and ``unshare``."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "`ip netns add` needs root (run as root, e.g. in CI)"
    for tool, package in (("ip", "iproute2"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (install {package})"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        made = _ip("netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"`ip netns add` fails here: {made.stderr.strip()}"
        uts = subprocess.run(
            ["ip", "netns", "exec", probe, "unshare", "--uts", "true"], capture_output=True, text=True,
            timeout=_CMD_TIMEOUT_S,
        )
        if uts.returncode != 0:
            return f"`unshare --uts` fails here: {uts.stderr.strip()}"
    except (OSError, subprocess.SubprocessError) as error:
        return f"network namespaces are not usable here: {error}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def remove_stale() -> None:
    """Delete namespaces a killed earlier run of this helper left behind (their test pid is gone)."""
    listing = _ip("netns", "list", check=False).stdout
    for name in re.findall(rf"^({PREFIX}(\d+)-\S+)", listing, flags=re.M):
        full, pid = name
        if int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            _kill_namespace_pids(full)
            _ip("netns", "del", full, check=False)


def _kill_namespace_pids(namespace: str) -> None:
    pids = _ip("netns", "pids", namespace, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def free_root_subnets(count: int) -> list[ipaddress.IPv4Network]:
    """``count`` /30 subnets of 169.254.0.0/16 for veths in the root namespace: picked from the pid (so
    parallel runs differ), skipping any the root namespace already routes, and 169.254.169.0/24 (the
    cloud metadata address lives there)."""
    routes = _ip("-4", "route", "show", "table", "all", check=False).stdout
    found = re.findall(r"(169\.254\.[\d.]+(?:/\d+)?)", routes)
    taken = [ipaddress.ip_network(prefix, strict=False) for prefix in found]
    chosen: list[ipaddress.IPv4Network] = []
    start = (os.getpid() * 7) % 10000
    for step in range(10000):
        index = (start + step) % 10000
        third, fourth = 100 + index // 64, (index % 64) * 4
        if third >= 169:
            third += 1  # skip 169.254.169.x
        subnet = ipaddress.ip_network(f"169.254.{third}.{fourth}/30")
        if any(subnet.overlaps(other) for other in taken + chosen):
            continue
        chosen.append(subnet)
        if len(chosen) == count:
            return chosen
    raise RuntimeError("no free 169.254.x.x/30 subnet in the root namespace")


class Hosts:
    """A set of simulated hosts (namespaces) and the processes started in them."""

    def __init__(self) -> None:
        self.prefix = f"{PREFIX}{os.getpid()}-"
        self.namespaces: list[str] = []
        self.root_links: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def add_host(self, host: str) -> str:
        name = f"{self.prefix}{host}"
        _ip("netns", "add", name)
        self.namespaces.append(name)
        self.exec(name, "ip", "link", "set", "lo", "up")
        return name

    def link(self, ns1: str | None, dev1: str, ns2: str, dev2: str, subnet: str) -> tuple[str, str]:
        """A veth pair ``dev1`` (in ``ns1``, None = the root namespace) <-> ``dev2`` (in ``ns2``) on a /30:
        the first address goes to ``dev1``, the second to ``dev2``. Returns both addresses."""
        network = ipaddress.ip_network(subnet)
        first, second = (str(address) for address in list(network.hosts())[:2])
        where1 = ["netns", ns1] if ns1 else []
        _ip("link", "add", "name", dev1, *where1, "type", "veth", "peer", "name", dev2, "netns", ns2)
        if ns1 is None:
            self.root_links.append(dev1)
        for ns, dev, address in ((ns1, dev1, first), (ns2, dev2, second)):
            self.exec(ns, "ip", "addr", "add", f"{address}/{network.prefixlen}", "dev", dev)
            self.exec(ns, "ip", "link", "set", dev, "up")
        return first, second

    def set_link(self, ns: str, dev: str, up: bool) -> None:
        self.exec(ns, "ip", "link", "set", dev, "up" if up else "down")

    def exec(self, ns: str | None, *args: str) -> str:
        """Run a short command in a namespace (or the root one), with a time limit; its stdout."""
        command = ["ip", "netns", "exec", ns, *args] if ns else list(args)
        done = subprocess.run(command, capture_output=True, text=True, timeout=_CMD_TIMEOUT_S, check=True)
        return done.stdout

    def start(
        self, ns: str, args: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """A long-running process in ``ns`` (``ip netns exec`` execs it, so the pid is the process's)."""
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                ["ip", "netns", "exec", ns, *args], cwd=cwd, env=env, stdout=log, stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self.processes.append(process)
        return process

    def start_python_module(
        self, ns: str, hostname: str, module: str, env: dict[str, str], log_path: Path, cwd: Path
    ) -> subprocess.Popen[bytes]:
        """``python -m module`` in ``ns`` with its own UTS namespace whose hostname is ``hostname``."""
        args = ["unshare", "--uts", sys.executable, "-c", _BOOT, hostname, module]
        return self.start(ns, args, env, log_path, cwd)

    def close(self) -> None:
        """Stop every process started here, the last started first (TERM, then KILL after 5 s, PM2's kill_timeout), then
        delete the namespaces by name, killing by pid anything still in them."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        for name in self.namespaces:
            _kill_namespace_pids(name)
            _ip("netns", "del", name, check=False)
        for dev in self.root_links:  # normally gone with their peers' namespaces
            _ip("link", "del", dev, check=False)
        self.namespaces.clear()

    def leftovers(self) -> list[str]:
        """Namespaces or root-side veths of this run that still exist (empty after :meth:`close`)."""
        listing = _ip("netns", "list", check=False).stdout
        links = _ip("-o", "link", "show", check=False).stdout
        names = [line.split()[0] for line in listing.splitlines() if line.startswith(self.prefix)]
        return names + [dev for dev in self.root_links if f" {dev}@" in links or f" {dev}:" in links]
