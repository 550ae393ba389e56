"""A one-machine Slurm cluster from Debian's packages (munge, slurmctld, slurmd, slurm-client), started by the
tests themselves: munged, `slurmctld -D` and `slurmd -D` as plain background processes, every file (key, config,
state, spool, logs) in one temporary folder, ports chosen free so two test runs do not collide, every wait bounded
by the clock, every process stopped by its PID. Client commands reach it through SLURM_CONF (see `env`).

No cgroups (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none): it runs in a plain container as root.
The controller and the node talk over 127.0.0.1 (SlurmctldHost=HOST(127.0.0.1), NodeAddr=127.0.0.1) under this
machine's host name, which slurmd must find as its node name. Slurm 22.05 resolves even "127.0.0.1" with
getaddrinfo(AI_ADDRCONFIG), which finds nothing where 127.0.0.1 is the only IPv4 address (a machine or network
namespace with loopback alone): slurmctld then dies with "Unable to resolve". glibc counts any other IPv4
address, so there the cluster adds 127.0.0.2/8 to lo (root) for its lifetime."""
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "scontrol", "scancel", "squeue", "sinfo")
# The states of a job that has ended (slurm.conf keeps ended jobs MinJobAge=600 s, for the tests to read them).
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def _find(name):
    for d in ("/usr/sbin", "/usr/bin", "/sbin"):
        if (Path(d) / name).exists():
            return str(Path(d) / name)
    return shutil.which(name)


class SlurmCluster:
    def __init__(self, root, cpus=4):
        missing = [n for n in DAEMONS + CLIENTS if not _find(n)]
        if missing:
            pytest.fail(f"Slurm is not installed ({', '.join(missing)} missing): run scripts/setup.sh (it installs munge, slurmctld, "
                        "slurmd, slurm-client)")
        if os.geteuid() != 0:
            pytest.skip("slurmd runs jobs as root here (CI runs the tests as root)")
        self.root = Path(root)
        self.procs = {}  # name -> Popen, in start order
        self.added_address = None
        self.host = socket.gethostname().split(".")[0]
        try:  # srun's ranks find their master by the node's name, as on a real cluster
            socket.gethostbyname(self.host)
        except OSError:
            pytest.fail(f"this machine's name {self.host!r} does not resolve (add it to /etc/hosts): the Slurm node is named after it")
        for d in ("munge", "state", "spool", "log", "jobs"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        # munged checks its folders: the socket's must be 755 (not group/other writable, reachable by clients).
        os.chmod(self.root, 0o755)
        os.chmod(self.root / "munge", 0o755)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)
        self.socket = self.root / "munge" / "munge.socket"
        self.ctld_port, self.slurmd_port = free_port(), free_port()
        # Job ids from a random start: segscale's default master port is 15000 + job id % 10000, so two test runs
        # at once (each numbering its jobs) do not both listen on 15001.
        self.first_job_id = random.randrange(500, 4500) * 20  # a block of 20 ids (a test module uses about 10)
        self.conf = self.root / "slurm.conf"
        self.conf.write_text(self._config(cpus))
        try:
            self._ensure_addrconfig_finds_loopback()
            self._start("munged", [_find("munged"), "--foreground", "--force", f"--socket={self.socket}", f"--key-file={key}",
                                   f"--pid-file={self.root / 'munge' / 'munged.pid'}", f"--seed-file={self.root / 'munge' / 'seed'}",
                                   f"--log-file={self.root / 'log' / 'munged.log'}"])
            self._wait(lambda: self.socket.exists(), 20, "munged's socket")
            self._start("slurmctld", [_find("slurmctld"), "-D", "-f", str(self.conf)])
            self._wait(lambda: self._port_open(self.ctld_port), 30, f"slurmctld listening on port {self.ctld_port}")
            self._start("slurmd", [_find("slurmd"), "-D", "-f", str(self.conf)])
            self._wait(lambda: self.node_state() == "idle", 60, "the node idle in sinfo")
        except BaseException:
            self.stop()
            raise

    def _config(self, cpus):
        r = self.root
        return f"""# written by tests/cli/slurm_cluster.py
ClusterName=segscale{os.getpid()}
SlurmctldHost={self.host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
AuthType=auth/munge
AuthInfo=socket={self.socket}
CredType=cred/munge
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# {cpus} CPUs whatever the machine has, so -n2 and a 4-task array run at once on 2 cores.
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=20
JobRequeue=1
FirstJobId={self.first_job_id}
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""

    def _ensure_addrconfig_finds_loopback(self):
        try:
            socket.getaddrinfo("127.0.0.1", 0, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
            return
        except socket.gaierror:
            pass
        ip = _find("ip")
        if not ip:
            pytest.fail("127.0.0.1 is this machine's only IPv4 address, so Slurm 22.05 cannot resolve it (getaddrinfo with "
                        "AI_ADDRCONFIG), and there is no `ip` command to add 127.0.0.2/8 to lo")
        subprocess.run([ip, "addr", "add", "127.0.0.2/8", "dev", "lo"], check=True, capture_output=True, timeout=10)
        self.added_address = "127.0.0.2/8"
        socket.getaddrinfo("127.0.0.1", 0, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)  # raises if that did not help

    # ---- processes

    def _start(self, name, argv):
        out = open(self.root / "log" / f"{name}.log", "w")  # -D: the daemon logs to stderr
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env())
        out.close()

    def _wait(self, ready, seconds, what):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise AssertionError(f"{name} exited with status {p.returncode} while waiting for {what}\n{self.logs()}")
            if ready():
                return
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {seconds} s\n{self.logs()}")

    @staticmethod
    def _port_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def env(self, **extra):
        """os.environ for Slurm's client commands of this cluster (and for jobs: sbatch passes it on)."""
        e = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
        e["SLURM_CONF"] = str(self.conf)
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def command(self, *argv, env=None, timeout=30, check=True):
        p = subprocess.run([_find(argv[0]), *map(str, argv[1:])], capture_output=True, text=True, env=env or self.env(), timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, argv))}: exit {p.returncode}\n{p.stdout}{p.stderr}\n{self.logs()}")
        return p.stdout

    def stop(self):
        """Cancels every job and waits (bounded) until none is left, then stops the daemons, newest first, by PID:
        SIGTERM, then SIGKILL after 10 s."""
        if "slurmd" in self.procs and self.procs["slurmd"].poll() is None:
            try:
                self.command("scancel", "--user", "root", timeout=10, check=False)
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline and self.command("squeue", "-h", "-o", "%i", timeout=10, check=False).strip():
                    time.sleep(0.2)
            except subprocess.TimeoutExpired:
                pass
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        self.procs.clear()
        if self.added_address:
            subprocess.run([_find("ip"), "addr", "del", self.added_address, "dev", "lo"], capture_output=True, timeout=10)
            self.added_address = None

    # ---- what the tests ask

    def node_state(self):
        p = subprocess.run([_find("sinfo"), "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=self.env(), timeout=10)
        return p.stdout.strip() if p.returncode == 0 else None

    def sbatch(self, *args, env=None):
        """Submits a job (its output, stdout and stderr, to jobs/<id>.out); returns the job id."""
        out = self.command("sbatch", "--parsable", f"--output={self.root / 'jobs' / '%j.out'}", "--open-mode=append", *args, env=env)
        return out.strip().split(";")[0]

    def job_output(self, job):
        """The job's output file (for an array task "ID_I" too), as Slurm names it."""
        p = subprocess.run([_find("scontrol"), "-o", "show", "job", str(job)], capture_output=True, text=True, env=self.env(), timeout=10)
        out = [kv.split("=", 1)[1] for kv in p.stdout.split() if kv.startswith("StdOut=")]
        f = Path(out[0]) if out else self.root / "jobs" / f"{job}.out"
        return f.read_text(errors="replace") if f.exists() else f"(no output file {f})"

    def state(self, job):
        fields = dict(kv.split("=", 1) for kv in self.command("scontrol", "-o", "show", "job", job).split() if "=" in kv)
        return fields["JobState"], fields

    def wait(self, job, states=FINISHED, seconds=120):
        """Waits until job (an id, or "ID_I" for an array task) is in one of `states`; returns the state."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            st, _ = self.state(job)
            if st in states:
                return st
            time.sleep(0.2)
        raise AssertionError(f"job {job} still {st} after {seconds} s (waited for {sorted(states)})\n{self.explain(job)}")

    def explain(self, job):
        """Everything to read when a job went wrong: its output, Slurm's record of it, the daemons' logs."""
        rec = self.command("scontrol", "show", "job", job, check=False)
        return f"--- job {job} output:\n{self.job_output(job)}\n--- scontrol show job {job}:\n{rec}\n{self.logs()}"

    def logs(self, lines=40):
        parts = []
        for f in sorted((self.root / "log").iterdir()):
            text = f.read_text(errors="replace").splitlines()
            parts.append(f"--- {f.name} (last {min(lines, len(text))} lines):\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)


if __name__ == "__main__":
    # Try the README's sbatch examples on one machine (root; scripts/setup.sh installs Slurm and munge):
    #   PYTHONPATH=tests python3 tests/cli/slurm_cluster.py /tmp/slurm-try
    # then, in another shell, the printed export line and sbatch as on a cluster. Ctrl-C stops every daemon.
    import sys
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/segscale-slurm")
    cluster = SlurmCluster(root)
    print(f"one-machine Slurm running (node {cluster.host}); in another shell:\n  export SLURM_CONF={cluster.conf}\n"
          "Ctrl-C here stops it", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it as Ctrl-C does
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
