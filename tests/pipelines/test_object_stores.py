"""``gs://`` and ``s3://`` end to end against real local servers started here: a GCS emulator
(``gcp-storage-emulator``) and moto's S3 server. Through the ``duplexloom`` command, as a user
runs it: the job reads its seeds from the bucket and writes shards, manifest, state and summary
there; a second run resumes (every shard skipped); ``validate``, ``qa sample`` and both exports
read the shards back from the bucket. Beam's S3 filesystem needs the pipeline options before the
first read, which only works when every command hands them to ``FileSystems`` first."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from duplexloom.cli import main as duplexloom_main
from duplexloom.pipelines.run import DEFAULT_SEEDS
from duplexloom.pipelines.spool import work_dir
from duplexloom.storage import set_storage_options

pytestmark = pytest.mark.slow

PICK = ("en-qa-00", "zh-tool-13", "en-tool-01")
BUCKET = "dl-test"
STORE_ARGS: list[list[str]] = [[]]  # the current store's flags, for the test's own reads


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class Store:
    root: str  # gs://dl-test or s3://dl-test
    args: list[str]  # storage flags every command gets


@pytest.fixture(scope="module", params=["s3", "gs"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    mp = pytest.MonkeyPatch()
    port = _free_port()
    if request.param == "gs":
        pytest.importorskip("apache_beam.io.gcp.gcsio", reason="the gcp extra (make test installs it)")
        server_mod = pytest.importorskip("gcp_storage_emulator.server", reason="gcp-storage-emulator")
        server = server_mod.create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
        server.start()
        mp.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        args: list[str] = []
    else:
        pytest.importorskip("boto3", reason="the aws extra (make test installs it)")
        moto_server = pytest.importorskip("moto.server", reason="moto[server]")
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        import boto3

        creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", **creds
        ).create_bucket(Bucket=BUCKET)
        # the keys only as Beam flags: nothing in the environment may stand in for them
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
            mp.delenv(var, raising=False)
        args = [
            f"--s3_endpoint_url=http://127.0.0.1:{port}",
            "--s3_access_key_id=testing",
            "--s3_secret_access_key=testing",
            "--s3_region_name=us-east-1",
        ]
    _wait_for(port)
    try:
        yield Store(f"{request.param}://{BUCKET}", args)
    finally:
        server.stop()
        mp.undo()


def _fs():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _cli(argv: list[str]) -> int:
    """``duplexloom ARGV`` as from a fresh process: no filesystem options left by an earlier
    command or pipeline, so each command must hand its own to FileSystems (S3 fails without)."""
    from apache_beam.options.value_provider import RuntimeValueProvider

    _fs().set_options(None)
    RuntimeValueProvider.set_runtime_options(None)
    try:
        return duplexloom_main(argv)
    finally:
        _fs().set_options(None)  # the test's own reads set theirs again


def _read(path: str) -> bytes:
    set_storage_options(STORE_ARGS[0])
    with _fs().open(path) as f:
        return f.read()


def _ls(pattern: str) -> list[str]:
    set_storage_options(STORE_ARGS[0])
    return sorted(m.path for m in _fs().match([pattern])[0].metadata_list)


@pytest.fixture(scope="module")
def job(store: Store, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Seeds uploaded to the bucket, then the job run twice into the bucket (the second resumes)."""
    lines = [line for line in open(DEFAULT_SEEDS, encoding="utf-8") if json.loads(line)["id"] in PICK]
    assert len(lines) == len(PICK)
    local = tmp_path_factory.mktemp(f"store_{store.root[:2]}")
    STORE_ARGS[:] = [store.args]
    set_storage_options(store.args)
    with _fs().create(f"{store.root}/seeds/seeds.jsonl") as f:
        f.write("".join(lines).encode("utf-8"))
    out = f"{store.root}/runs/r1"
    argv = [
        "run", "--seeds", f"{store.root}/seeds/*.jsonl", "--out", out, "--quiet",
        "--set", "shards.num_shards=2", "--set", f"output.cache_dir={local / 'cache'}", *store.args,
    ]  # fmt: skip
    assert _cli(argv) == 0
    first = json.loads(_read(f"{out}/summary.json"))
    first_shards = {p: _read(p) for p in _ls(f"{out}/shards/*.tar")}
    assert _cli(argv) == 0  # resume
    second = json.loads(_read(f"{out}/summary.json"))
    return {"out": out, "local": local, "first": first, "second": second, "first_shards": first_shards}


def test_run_writes_everything_to_the_bucket_and_resumes(store: Store, job: dict) -> None:
    out, first = job["out"], job["first"]
    acc = first["accounting"]
    assert acc["seeds_in"] == len(PICK) and acc["balanced"]
    assert acc["samples_out"] == len(PICK)
    shards = _ls(f"{out}/shards/*.tar")
    assert [p.rsplit("/", 1)[1] for p in shards] == ["000000.tar", "000001.tar"]
    for name in ("manifest.parquet", "rejects.jsonl", "config.yaml"):
        assert _ls(f"{out}/{name}") == [f"{out}/{name}"]
    assert _ls(f"{work_dir(out)}/*") == []  # the spool is removed once the shards are written
    assert job["second"]["shards"]["skipped_on_resume"] == 2
    assert {p: _read(p) for p in shards} == job["first_shards"]  # resume rewrote nothing


def test_validate_qa_and_exports_read_the_bucket(
    store: Store, job: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    out, local = job["out"], job["local"]
    assert _cli(["validate", f"{out}/shards/*.tar", *store.args]) == 0
    assert f"2 shard(s), {len(PICK)} sample(s), 0 violation(s)" in capsys.readouterr().err
    qa_dir = local / "qa"
    assert _cli(["qa", "sample", f"{out}/shards", "--n", "2", "--out", str(qa_dir), *store.args]) == 0
    assert (qa_dir / "index.html").is_file()
    assert len(list((qa_dir / "samples").glob("*/index.html"))) == 2
    for fmt in ("nemo", "moshi"):
        dest = local / fmt
        rc = _cli(["export", fmt, f"{out}/shards/*.tar", str(dest), *store.args])
        summary = json.loads((dest / "export_summary.json").read_text())
        assert rc == 0 and summary["shards"] == 2
        assert summary["samples"] + sum(summary["skipped"].values()) == len(PICK)
    capsys.readouterr()
