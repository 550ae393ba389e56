"""segscale on S3, against two S3 servers started on 127.0.0.1 for this module (s3_servers.py): moto's standalone
server (an emulator, IAM authentication on) and SeaweedFS (a production server); a proxy in front of them that
throttles or dies on cue; fake credential endpoints (container, EC2 instance metadata) for the credential chain."""
import http.client
import http.server
import json
import os
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import case_study_pipeline
from s3_servers import moto_only, pytest_generate_tests, seaweedfs_only, server_fixtures  # noqa: F401 (pytest's hook)

BUCKET = "segscale-test"
# moto 5.1 checks signatures against its own decoding of the request, which differs from AWS's for a query value
# holding '/' and for percent-encoded path characters other than %20 (boto3's own requests fail there too).
# So each test that lists gets its own bucket and lists from the bucket's root; keys use safe characters.
BUCKETS = ["segscale-rt", "segscale-many", "segscale-mp", "segscale-die", "segscale-ctr", "segscale-ds", "segscale-store",
           "segscale-bad", "segscale-killed", "segscale-train", "segscale-runs",
           "segscale-models", "segscale-inferds", "segscale-preds", "segscale-crash", "segscale-keys"]
server, moto_server, seaweedfs_server = server_fixtures([BUCKET, *BUCKETS])


@pytest.fixture
def s3env(server, tmp_path):
    """The environment of a segscale process that talks to the test server: only what the test sets."""
    home = tmp_path / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update(HOME=str(home), TMPDIR=str(tmp_path), AWS_ENDPOINT_URL=server.endpoint, AWS_REGION="us-east-1",
                AWS_EC2_METADATA_DISABLED="true", AWS_MAX_ATTEMPTS="3")

    def make(creds=True, **extra):
        env = dict(base)
        if creds:
            env.update(AWS_ACCESS_KEY_ID=server.key, AWS_SECRET_ACCESS_KEY=server.secret)
        env.update({k: str(v) for k, v in extra.items()})
        return env
    return make


@pytest.fixture(scope="session")
def storage_tool():
    path = os.environ.get("STORAGE_TOOL")
    if not path or not Path(path).exists():
        pytest.fail("STORAGE_TOOL is not set to a built binary (run these tests through ctest)")
    return path


def run_env(binary, env, *args, timeout=600):
    return subprocess.run([binary, *map(str, args)], capture_output=True, env=env, timeout=timeout)


def ok(p):
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    return p


def one_line_error(p, *needles, secrets=()):
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    for s in secrets:
        assert s not in err and s not in p.stdout.decode(), "a secret was printed"
    return err


class Proxy:
    """Forwards to the server; answers 503 SlowDown to the first `throttle` requests, and stops answering
    at all (closes the connection, as a dead server would) from the `die_at`-th request whose method and path
    contain `die_on` (e.g. ("PUT", ".tar")) on; `on_die()` is called then, once (e.g. to kill the server itself)."""

    def __init__(self, upstream_port, throttle=0, die_at=None, die_on=("", ""), on_die=None):
        self.count = self.matched = 0
        self.dead = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_one_request(self):
                try:
                    super().handle_one_request()
                except (ConnectionError, OSError):
                    self.close_connection = True

            def forward(self):
                outer.count += 1
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if outer.die_on[0] in self.command and outer.die_on[1] in self.path:
                    outer.matched += 1
                if outer.die_at is not None and outer.matched >= outer.die_at and not outer.dead:
                    outer.dead = True
                    if on_die:
                        on_die()
                if outer.dead:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if outer.count <= outer.throttle:
                    msg = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                c = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                c.request(self.command, self.path, body=body, headers={k: v for k, v in self.headers.items()})
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        self.throttle, self.die_at, self.die_on = throttle, die_at, die_on
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_object_round_trip_range_size_remove(server, s3env, storage_tool):
    env = s3env()
    root = "s3://segscale-rt/sub/dir"
    ok(run_env(storage_tool, env, root, "mkroot"))
    ok(run_env(storage_tool, env, root, "write", "a b.txt", "hello world"))  # a key that needs encoding
    assert ok(run_env(storage_tool, env, root, "get", "a b.txt")).stdout == b"hello world"
    assert ok(run_env(storage_tool, env, root, "range", "a b.txt", 6, 5)).stdout == b"world"
    assert ok(run_env(storage_tool, env, root, "size", "a b.txt")).stdout == b"11\n"
    assert ok(run_env(storage_tool, env, root, "size", "nope")).stdout == b"absent\n"
    one_line_error(run_env(storage_tool, env, root, "range", "a b.txt", 8, 10), "s3://segscale-rt/sub/dir/a b.txt: short read")
    one_line_error(run_env(storage_tool, env, root, "get", "nope"), "s3://segscale-rt/sub/dir/nope: NoSuchKey (HTTP 404)")
    assert ok(run_env(storage_tool, env, "s3://segscale-rt", "ls")).stdout == b"sub/dir/a b.txt\n"
    ok(run_env(storage_tool, env, root, "rm", "a b.txt"))
    ok(run_env(storage_tool, env, root, "rm", "a b.txt"))  # absent is fine
    assert ok(run_env(storage_tool, env, "s3://segscale-rt", "ls")).stdout == b""


def test_listing_past_1000_keys(server, s3env, storage_tool):
    # moto mis-signs a query value holding '/' (see BUCKETS): there the keys sit at the bucket's root. SeaweedFS's
    # continuation token is the last key itself, here under a prefix holding '/' and a space.
    prefix = "" if server.name == "moto" else "deep/sub dir"
    root = "s3://segscale-many" + (f"/{prefix}" if prefix else "")
    server.helper("put-many", "segscale-many", prefix, 1234)
    names = ok(run_env(storage_tool, s3env(), root, "ls")).stdout.decode().splitlines()
    assert names == [f"obj-{i:05d}" for i in range(1234)]  # two pages of ListObjectsV2
    names = ok(run_env(storage_tool, s3env(), root, "ls", "obj-011")).stdout.decode().splitlines()
    assert names == [f"obj-{i:05d}" for i in range(1100, 1200)]


@seaweedfs_only  # moto mis-signs percent-encoded path characters other than %20 (see BUCKETS)
def test_keys_with_reserved_characters(server, s3env, storage_tool):
    env, root = s3env(), "s3://segscale-keys/k"
    names = ["a+b.txt", "x=y&z;w.txt", "q?#.txt", "pct%41.txt", "tilde~*'().txt", "\u00fc \u00f1.txt"]
    for n in names:
        ok(run_env(storage_tool, env, root, "write", n, "v-" + n))
        assert ok(run_env(storage_tool, env, root, "get", n)).stdout == ("v-" + n).encode()
    assert ok(run_env(storage_tool, env, root, "ls")).stdout.decode().splitlines() == sorted(names, key=lambda s: s.encode())
    for n in names:
        ok(run_env(storage_tool, env, root, "rm", n))
    assert ok(run_env(storage_tool, env, root, "ls")).stdout == b""


def test_multipart_upload(server, s3env, storage_tool, tmp_path):
    data = os.urandom(11 * 1024 * 1024 + 123)
    (tmp_path / "big.bin").write_bytes(data)
    env = s3env(SEGSCALE_S3_PART_MIB=5)
    ok(run_env(storage_tool, env, "s3://segscale-mp", "put", "big.bin", tmp_path / "big.bin"))
    assert server.helper("head", "segscale-mp", "big.bin").endswith('-3"')  # three parts
    assert ok(run_env(storage_tool, env, "s3://segscale-mp", "get", "big.bin")).stdout == data
    assert server.helper("uploads", "segscale-mp", "") == "0"
    assert not list((tmp_path / "segscale-s3-spool").iterdir())  # the local temporary is gone


def test_server_dies_mid_upload_then_rerun_completes(server, s3env, storage_tool, tmp_path):
    data = os.urandom(16 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    proxy = Proxy(server.port, die_at=2, die_on=("PUT", "partNumber="))  # create upload, part 1, then the server is gone
    try:
        env = s3env(SEGSCALE_S3_PART_MIB=5, AWS_ENDPOINT_URL=proxy.endpoint, AWS_MAX_ATTEMPTS=2)
        p = run_env(storage_tool, env, "s3://segscale-die", "put", "big.bin", tmp_path / "big.bin")
        one_line_error(p, "s3://segscale-die/big.bin (part 2)", "after 2 attempts")  # the connection dropped
    finally:
        proxy.close()
    assert ok(run_env(storage_tool, s3env(), "s3://segscale-die", "size", "big.bin")).stdout == b"absent\n"
    assert server.helper("uploads", "segscale-die", "") == "1"  # left to be resumed
    # The rerun resumes the upload: part 1 (same MD5) is kept, parts 2..4 are sent.
    proxy = Proxy(server.port, die_on=("PUT", "partNumber="))
    try:
        env = s3env(SEGSCALE_S3_PART_MIB=5, AWS_ENDPOINT_URL=proxy.endpoint)
        ok(run_env(storage_tool, env, "s3://segscale-die", "put", "big.bin", tmp_path / "big.bin"))
        assert proxy.matched == 3
    finally:
        proxy.close()
    assert ok(run_env(storage_tool, s3env(), "s3://segscale-die", "get", "big.bin")).stdout == data
    assert server.helper("uploads", "segscale-die", "") == "0"



@seaweedfs_only
def test_server_killed_mid_upload_restarts_with_nothing_lost(server, s3env, storage_tool, tmp_path):
    # A real crash: the server process is SIGKILLed as the second part arrives, then restarted on its folder.
    ok(run_env(storage_tool, s3env(), "s3://segscale-crash", "write", "before.txt", "written before the crash"))
    data = os.urandom(16 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    proxy = Proxy(server.port, die_at=2, die_on=("PUT", "partNumber="), on_die=server.kill)
    try:
        env = s3env(SEGSCALE_S3_PART_MIB=5, AWS_ENDPOINT_URL=proxy.endpoint, AWS_MAX_ATTEMPTS=2)
        p = run_env(storage_tool, env, "s3://segscale-crash", "put", "big.bin", tmp_path / "big.bin")
        one_line_error(p, "s3://segscale-crash/big.bin (part 2)", "after 2 attempts", secrets=[server.secret])
        assert server.proc.poll() is not None  # it was the server that died
        p = run_env(storage_tool, s3env(AWS_MAX_ATTEMPTS=1), "s3://segscale-crash", "size", "big.bin")
        one_line_error(p, "s3://segscale-crash/big.bin: Couldn't connect to server")
    finally:
        proxy.close()
        if server.proc.poll() is not None:
            server.start()
    env = s3env()
    assert ok(run_env(storage_tool, env, "s3://segscale-crash", "get", "before.txt")).stdout == b"written before the crash"
    assert ok(run_env(storage_tool, env, "s3://segscale-crash", "size", "big.bin")).stdout == b"absent\n"
    assert server.helper("uploads", "segscale-crash", "") == "1"  # the unfinished upload survived the crash
    proxy = Proxy(server.port, die_on=("PUT", "partNumber="))
    try:
        ok(run_env(storage_tool, s3env(SEGSCALE_S3_PART_MIB=5, AWS_ENDPOINT_URL=proxy.endpoint), "s3://segscale-crash", "put", "big.bin",
                   tmp_path / "big.bin"))
        assert proxy.matched == 3  # part 1, stored before the crash, is kept
    finally:
        proxy.close()
    assert ok(run_env(storage_tool, env, "s3://segscale-crash", "get", "big.bin")).stdout == data
    assert server.helper("uploads", "segscale-crash", "") == "0"

@moto_only
def test_throttling_is_retried(server, s3env, storage_tool):
    ok(run_env(storage_tool, s3env(), f"s3://{BUCKET}/thr", "write", "x", "payload"))
    proxy = Proxy(server.port, throttle=3)
    try:
        env = s3env(AWS_ENDPOINT_URL=proxy.endpoint, AWS_MAX_ATTEMPTS=5)
        assert ok(run_env(storage_tool, env, f"s3://{BUCKET}/thr", "get", "x")).stdout == b"payload"
        assert proxy.count == 4
        proxy.count, proxy.throttle = 0, 10
        p = run_env(storage_tool, dict(env, AWS_MAX_ATTEMPTS="2"), f"s3://{BUCKET}/thr", "get", "x")
        one_line_error(p, f"s3://{BUCKET}/thr/x: SlowDown (HTTP 503): Please reduce your request rate.", "after 2 attempts")
    finally:
        proxy.close()


@moto_only
def test_stalled_server_times_out(s3env, storage_tool):
    with socket.socket() as lsock:  # accepts connections and never answers
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        env = s3env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{lsock.getsockname()[1]}", SEGSCALE_S3_STALL_SECONDS=1, AWS_MAX_ATTEMPTS=2)
        t0 = time.monotonic()
        p = run_env(storage_tool, env, "s3://segscale-rt/x", "get", "y", timeout=60)
        one_line_error(p, "s3://segscale-rt/x/y: Timeout was reached (host 127.0.0.1:", "endpoint from AWS_ENDPOINT_URL; after 2 attempts)")
        assert time.monotonic() - t0 < 20


def test_wrong_credentials_and_missing_bucket(server, s3env, storage_tool, run):
    env = s3env(AWS_SECRET_ACCESS_KEY="wrong-secret-do-not-print")
    p = run_env(storage_tool, env, f"s3://{BUCKET}/rt", "get", "x")
    one_line_error(p, f"s3://{BUCKET}/rt/x: SignatureDoesNotMatch (HTTP 403)", "credentials from environment",
                   secrets=["wrong-secret-do-not-print"])
    one_line_error(run_env(os.environ["SEGSCALE_BIN"], env, "verify", "s3://segscale-rt/store"), "s3://segscale-rt/store/manifest.json: ",
                   "(HTTP 403)", "credentials from environment", secrets=["wrong-secret-do-not-print"])
    env = s3env(AWS_ACCESS_KEY_ID="AKIANOSUCHKEY000000")
    one_line_error(run_env(storage_tool, env, f"s3://{BUCKET}/rt", "get", "x"), "InvalidAccessKeyId (HTTP 403)",
                   secrets=[server.secret])
    one_line_error(run_env(os.environ["SEGSCALE_BIN"], s3env(), "verify", "s3://no-such-bucket/store"),
                   "s3://no-such-bucket: NoSuchBucket (HTTP 404)")
    one_line_error(run_env(storage_tool, s3env(creds=False), f"s3://{BUCKET}/rt", "get", "x"), "no AWS credentials found")


@moto_only
def test_credentials_from_profile_files_and_session_token(server, s3env, storage_tool, tmp_path):
    env = s3env(creds=False, AWS_PROFILE="lab")
    aws = Path(env["HOME"]) / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(f"[default]\naws_access_key_id = BAD\naws_secret_access_key = BAD\n"
                                     f"[lab]\naws_access_key_id = {server.key}\naws_secret_access_key = {server.secret}\n")
    (aws / "config").write_text("[profile lab]\nregion = us-east-1\n")
    ok(run_env(storage_tool, env, f"s3://{BUCKET}/prof", "write", "p", "from profile"))
    key, secret, token = server.helper("session").split()
    env = s3env(creds=False, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_SESSION_TOKEN=token)
    assert ok(run_env(storage_tool, env, f"s3://{BUCKET}/prof", "get", "p")).stdout == b"from profile"
    del env["AWS_SESSION_TOKEN"]  # the token is what makes these keys valid
    one_line_error(run_env(storage_tool, env, f"s3://{BUCKET}/prof", "get", "p"), "(HTTP 403)", secrets=[secret, token])


class CredentialEndpoint:
    """A fake container-credentials endpoint (path /creds, wants an Authorization token) or EC2 instance
    metadata service (IMDSv2: token, role name, role credentials)."""

    def __init__(self, key, secret, expires_in_s, imds=False):
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self.reply(200, b"imds-token")
                self.reply(403, b"")

            def do_GET(self):
                creds = json.dumps({"AccessKeyId": key, "SecretAccessKey": secret, "Token": "",
                                    "Expiration": (datetime.now(timezone.utc) + timedelta(seconds=expires_in_s)).strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
                if imds:
                    if self.headers.get("X-aws-ec2-metadata-token") != "imds-token":
                        return self.reply(401, b"")
                    if self.path == "/latest/meta-data/iam/security-credentials/":
                        return self.reply(200, b"segscale-role")
                    if self.path == "/latest/meta-data/iam/security-credentials/segscale-role":
                        outer.hits += 1
                        return self.reply(200, creds)
                    return self.reply(404, b"")
                if self.path == "/creds" and self.headers.get("Authorization") == "container-auth":
                    outer.hits += 1
                    return self.reply(200, creds)
                self.reply(403, b"")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@moto_only
def test_credentials_from_container_endpoint_refreshed_before_expiry(server, s3env, storage_tool):
    # Expiring in 2 minutes is inside the 5-minute refresh margin: every request fetches them again.
    ep = CredentialEndpoint(server.key, server.secret, expires_in_s=120)
    try:
        env = s3env(creds=False, AWS_CONTAINER_CREDENTIALS_FULL_URI=ep.url + "/creds", AWS_CONTAINER_AUTHORIZATION_TOKEN="container-auth")
        server.helper("put-many", "segscale-ctr", "", 3)
        assert ok(run_env(storage_tool, env, "s3://segscale-ctr", "ls")).stdout.split() == [b"obj-00000", b"obj-00001", b"obj-00002"]
        ok(run_env(storage_tool, env, "s3://segscale-ctr", "size", "obj-00001"))
        assert ep.hits == 2
        # Valid for an hour: fetched once per process, however many requests.
        ep2 = CredentialEndpoint(server.key, server.secret, expires_in_s=3600)
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = ep2.url + "/creds"
        ok(run_env(storage_tool, env, "s3://segscale-ctr", "ls"))
        assert ep2.hits == 1
        ep2.close()
        one_line_error(run_env(storage_tool, env, "s3://segscale-ctr", "ls"), "container credentials endpoint: Couldn't connect to server")
        env.update(AWS_CONTAINER_CREDENTIALS_FULL_URI=ep.url + "/creds", AWS_CONTAINER_AUTHORIZATION_TOKEN="wrong")
        one_line_error(run_env(storage_tool, env, "s3://segscale-ctr", "ls"), "container credentials endpoint: HTTP 403")
    finally:
        ep.close()


@moto_only
def test_credentials_from_instance_metadata(server, s3env, storage_tool):
    ep = CredentialEndpoint(server.key, server.secret, expires_in_s=3600, imds=True)
    try:
        env = s3env(creds=False, AWS_EC2_METADATA_DISABLED="false", AWS_EC2_METADATA_SERVICE_ENDPOINT=ep.url)
        ok(run_env(storage_tool, env, f"s3://{BUCKET}/imds", "write", "x", "via imds"))
        assert ep.hits == 1
    finally:
        ep.close()


def disk_store(segscale_bin, root, out):
    """The reference: the same prep (3 shards of one case each) into a folder."""
    ok(subprocess.run([segscale_bin, "prep", "--data", root / "ds", "--out", out, "--copies", "8", "--pipeline", root / "pipe.json",
                       "--shard-size", "1", "--quiet"], capture_output=True))
    return {f.name: f.read_bytes() for f in out.iterdir() if not f.name.startswith(".")}


def tree(storage_tool, env, root):
    names = ok(run_env(storage_tool, env, root, "ls")).stdout.decode().split("\n")
    return {n: ok(run_env(storage_tool, env, root, "get", n)).stdout for n in names if n}


def test_prep_verify_inspect_train_on_s3(server, s3env, storage_tool, make_store, segscale_bin, tmp_path):
    root = make_store(3, (40, 40, 24), case_study_pipeline((24, 24, 16)), modes=(("--copies", 8),))
    env = s3env()
    server.helper("upload", "segscale-ds", "", root / "ds")
    p = run_env(segscale_bin, env, "prep", "--data", "s3://segscale-ds", "--out", "s3://segscale-store", "--copies", 8,
                "--pipeline", root / "pipe.json", "--shard-size", 1, "--quiet")
    ok(p)
    assert b"store complete" in p.stdout
    local = disk_store(segscale_bin, root, tmp_path / "disk")
    assert len([n for n in local if n.endswith(".tar")]) == 3
    assert tree(storage_tool, env, "s3://segscale-store") == local  # byte-identical to the store prep wrote on disk
    out = ok(run_env(segscale_bin, env, "verify", "s3://segscale-store")).stdout.decode()
    assert "OK, 24 samples in 3 shards" in out
    out = ok(run_env(segscale_bin, env, "inspect", "s3://segscale-store")).stdout.decode()
    assert "segscale store (format 1), copies mode x8, 3 cases" in out
    # A corrupt shard is found by verify.
    shard = sorted(n for n in local if n.endswith(".tar"))[0]
    bad = bytearray(local[shard])
    first = json.loads(local["index.json"])["samples"][0]
    bad[first["image"][0] + 200] ^= 0xFF  # inside the first sample's image data
    for n, b in local.items():
        (tmp_path / n).write_bytes(b if n != shard else bytes(bad))
        ok(run_env(storage_tool, env, "s3://segscale-bad", "put", n, tmp_path / n))
    p = run_env(segscale_bin, env, "verify", "s3://segscale-bad")
    assert p.returncode == 1 and b"CRC-32C mismatch" in p.stderr


def test_prep_killed_mid_store_resumes_to_identical_store(server, s3env, storage_tool, make_store, segscale_bin, tmp_path):
    root = make_store(3, (40, 40, 24), case_study_pipeline((24, 24, 16)), modes=(("--copies", 8),))
    local = disk_store(segscale_bin, root, tmp_path / "disk")
    proxy = Proxy(server.port, die_at=2, die_on=("PUT", ".tar"))  # settings and one shard get through, then the server is gone
    try:
        env = s3env(AWS_ENDPOINT_URL=proxy.endpoint, AWS_MAX_ATTEMPTS=2)
        p = run_env(segscale_bin, env, "prep", "--data", root / "ds", "--out", "s3://segscale-killed", "--copies", 8,
                    "--pipeline", root / "pipe.json", "--shard-size", 1, "--workers", 1, "--quiet")
        assert p.returncode == 1, p.stderr
    finally:
        proxy.close()
    env = s3env()
    partial = tree(storage_tool, env, "s3://segscale-killed")
    assert "manifest.json" not in partial
    for name, data in partial.items():  # whatever is there is complete
        assert data == local[name], name
    p = ok(run_env(segscale_bin, env, "prep", "--data", root / "ds", "--out", "s3://segscale-killed", "--copies", 8,
                   "--pipeline", root / "pipe.json", "--shard-size", 1, "--quiet"))
    assert tree(storage_tool, env, "s3://segscale-killed") == local
    assert server.helper("uploads", "segscale-killed", "") == "0"


def test_train_from_s3_store_matches_disk(server, s3env, make_store, segscale_bin, torch_build, tmp_path):
    root = make_store(3, (40, 40, 24), case_study_pipeline((24, 24, 16)), modes=(("--copies", 8),))
    env = s3env()
    server.helper("upload", "segscale-train", "", root / "copies")
    args = ["--batch", 2, "--max-steps", 3, "--epochs", 100000, "--val-fraction", 0.34, "--channels", "4,8,16", "--strides", "2,2",
            "--threads", 1, "--loader-threads", 2, "--quiet"]
    losses = []
    for store, out in (("s3://segscale-train", tmp_path / "s3run"), (root / "copies", tmp_path / "diskrun")):
        ok(run_env(segscale_bin, env, "train", "--store", store, "--out", out, *args))
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
        losses.append([{k: v for k, v in r.items() if "loss" in k or "dice" in k} for r in rows])
    assert losses[0] == losses[1] and any(losses[0])  # the same samples in the same order: the same run


def test_train_out_on_s3_resumes_on_a_fresh_machine(server, s3env, storage_tool, make_store, segscale_bin, torch_build, tmp_path):
    root = make_store(3, (40, 40, 24), case_study_pipeline((24, 24, 16)), modes=(("--copies", 8),))
    env = s3env()
    args = ["--store", root / "copies", "--batch", 2, "--epochs", 100000, "--val-fraction", 0.34, "--channels", "4,8,16",
            "--strides", "2,2", "--threads", 1, "--loader-threads", 2, "--quiet"]
    ok(run_env(segscale_bin, env, "train", *args, "--max-steps", 4, "--out", tmp_path / "disk"))
    run = "s3://segscale-runs/r1"
    p = ok(run_env(segscale_bin, env, "train", *args, "--max-steps", 2, "--out", run, "--stage-dir", tmp_path / "m1"))
    assert b"-> s3://segscale-runs/r1/" in p.stdout, p.stdout
    # A fresh run into it is refused, naming the URL and the ways out.
    p = run_env(segscale_bin, env, "train", *args, "--max-steps", 2, "--out", run, "--stage-dir", tmp_path / "m2")
    assert p.returncode == 2 and b"s3://segscale-runs/r1/config.json" in p.stderr and b"--resume" in p.stderr, p.stderr
    # Another machine (an empty staging folder) resumes from the checkpoint in S3: the same run as uninterrupted.
    ok(run_env(segscale_bin, env, "train", *args, "--max-steps", 4, "--out", run, "--resume", "--stage-dir", tmp_path / "m3"))
    remote = tree(storage_tool, env, "s3://segscale-runs")
    assert {"r1/checkpoint.pt", "r1/config.json", "r1/last.pt", "r1/metrics.jsonl"} <= set(remote), sorted(remote)
    assert remote["r1/last.pt"] == (tmp_path / "disk" / "last.pt").read_bytes()
    steps = lambda text: [json.loads(x)["loss"] for x in text.splitlines() if '"type":"step"' in x]
    assert steps(remote["r1/metrics.jsonl"].decode()) == steps((tmp_path / "disk" / "metrics.jsonl").read_text())
    # --overwrite starts afresh: none of the old run's files survive in S3.
    ok(run_env(segscale_bin, env, "train", *args, "--max-steps", 1, "--out", run, "--overwrite", "--stage-dir", tmp_path / "m4"))
    remote = tree(storage_tool, env, "s3://segscale-runs")
    assert len(steps(remote["r1/metrics.jsonl"].decode())) == 1
    assert remote["r1/last.pt"] != (tmp_path / "disk" / "last.pt").read_bytes()


def test_infer_and_eval_read_and_write_s3(server, s3env, storage_tool, make_store, segscale_bin, torch_build, tmp_path):
    # What infer and eval write from and to S3 is byte for byte what they write from and to disk.
    root = make_store(3, (40, 40, 24), case_study_pipeline((24, 24, 16)), modes=(("--cache",),))
    env = s3env()
    sh = lambda *a: ok(run_env(segscale_bin, env, *a))
    sh("train", "--store", root / "cache", "--out", tmp_path / "run", "--max-steps", 2, "--val-fraction", 0, "--channels", "4,8,16",
       "--strides", "2,2", "--threads", 1, "--quiet")
    server.helper("upload", "segscale-models", "r1", tmp_path / "run")
    server.helper("upload", "segscale-inferds", "", root / "ds")
    model, ds = "s3://segscale-models/r1/last.pt", "s3://segscale-inferds"
    img = "imagesTr/" + sorted(f.name for f in (root / "ds" / "imagesTr").iterdir())[0]
    sh("infer", "--model", tmp_path / "run" / "last.pt", "--image", root / "ds" / img, "--out", tmp_path / "one.nii.gz", "--threads", 1)
    p = sh("infer", "--model", model, "--image", f"{ds}/{img}", "--out", "s3://segscale-models/out/one.nii.gz", "--threads", 1)
    assert b"-> s3://segscale-models/out/one.nii.gz" in p.stdout, p.stdout
    assert ok(run_env(storage_tool, env, "s3://segscale-models", "get", "out/one.nii.gz")).stdout == (tmp_path / "one.nii.gz").read_bytes()
    sh("infer", "--model", tmp_path / "run" / "last.pt", "--data", root / "ds", "--out-dir", tmp_path / "pred", "--preview", "no", "--quiet")
    sh("infer", "--model", model, "--data", ds, "--out-dir", "s3://segscale-preds", "--preview", "no", "--quiet")
    sh("eval", "--pred", tmp_path / "pred", "--truth", root / "ds")
    p = sh("eval", "--pred", "s3://segscale-preds", "--truth", ds)
    assert b"-> s3://segscale-preds/scores.csv" in p.stdout, p.stdout
    remote = tree(storage_tool, env, "s3://segscale-preds")
    local = {f.name: f.read_bytes() for f in (tmp_path / "pred").iterdir()}
    assert remote == local and "scores.csv" in remote
    # A missing model names the URL.
    p = run_env(segscale_bin, env, "infer", "--model", "s3://segscale-models/r9/model.pt", "--image", f"{ds}/{img}", "--out", tmp_path / "x.nii.gz")
    one_line_error(p, "s3://segscale-models/r9/model.pt: no such object")
