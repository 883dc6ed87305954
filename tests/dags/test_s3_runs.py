"""The pipeline with ETLML_STORAGE_ROOT and ETLML_LANDING_ROOT on a real S3-compatible server (moto's
standalone server on a free local port): landing files in all five formats and a bad object read from S3,
every intermediate file an S3 object whose sha256 is checked, a rerun giving the same rows, and an sklearn
version's artifact stored and verified on S3."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etlml.features.stats import FeatureStats
from etlml.interval import Interval
from etlml.models import artifacts, registry
from etlml.storage import FileRef, StorageIntegrityError, read_frame
from tests import objectstore
from tests.dags.test_bad_config import task_states
from tests.dags.test_dag_runs import FULL_DIGEST, PIPELINE, digests, xcom_values
from tests.dags.test_landing_runs import KEY, LOGICAL, REJECTED_DIGEST, START, assert_accounted, run, stored
from tests.helpers import register_sklearn
from tests.landing_files import mixed_partition

pytestmark = [pytest.mark.airflow, pytest.mark.db]

BAD_OBJECT = b"PAR1 this is not parquet"
STATS = {"f1": FeatureStats(9, 3), "f2": FeatureStats(0.5, 2), "f3": FeatureStats(95, 12)}


@dataclass
class Bucket:
    client: Any
    name: str
    root: str  # s3://aws_default@<bucket>

    def key(self, uri: str) -> str:
        return uri.split(f"{self.name}/", 1)[1]

    def sha256(self, uri: str) -> str:
        body = self.client.get_object(Bucket=self.name, Key=self.key(uri))["Body"].read()
        return hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with objectstore.s3_server() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    name = f"etlml-{uuid.uuid4().hex[:12]}"
    client = objectstore.client(endpoint)
    client.create_bucket(Bucket=name)
    root = f"s3://aws_default@{name}"
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", objectstore.airflow_connection(endpoint))
    monkeypatch.setenv("ETLML_STORAGE_ROOT", f"{root}/storage")
    monkeypatch.setenv("ETLML_SOURCE", "landing")
    monkeypatch.setenv("ETLML_LANDING_ROOT", f"{root}/landing")
    return Bucket(client, name, root)


def sklearn_version(conn: psycopg.Connection[Any], bucket: Bucket, tmp_path: Path) -> tuple[str, str]:
    """``sk1``, registered with its artifact stored under the S3 storage root and shadowing the champion."""
    register_sklearn(conn, "sk1", tmp_path, f"{bucket.root}/storage", STATS)
    registry.shadow(conn, "sk1", "t")
    row = conn.execute(
        "SELECT artifact_uri, artifact_sha256 FROM model_versions WHERE model_version = 'sk1'"
    ).fetchone()
    assert row is not None
    uri, sha = str(row[0]), str(row[1])
    assert uri == f"{bucket.root}/storage/+models/sk1/model.skops"
    assert bucket.sha256(uri) == sha == hashlib.sha256((tmp_path / "m.skops").read_bytes()).hexdigest()
    return uri, sha


def written_files(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every file the run's XCom names, with its recorded sha256."""
    return [
        *values["extract"],
        values["extract.run"]["rejected"],
        values["extract.run"]["files"],
        values["transform[0]"],
        *values["predict[0]"]["files"],
    ]


def test_the_pipeline_on_s3_storage_and_landing(
    dags: dict[str, Any], fresh_migrated: str, bucket: Bucket, tmp_path: Path
) -> None:
    exp = mixed_partition(tmp_path / "landing", START, KEY)
    (tmp_path / "landing" / KEY / "f.parquet").write_bytes(BAD_OBJECT)
    exp.rejected[(f"{KEY}/f.parquet", 0)] = "unparseable_file"
    exp.raw[(f"{KEY}/f.parquet", 0)] = BAD_OBJECT
    uploaded = objectstore.upload(bucket.client, bucket.name, tmp_path / "landing", "landing")
    assert {k.rsplit(".", 1)[-1] for k in uploaded} >= {"jsonl", "csv", "gz", "parquet"}
    with psycopg.connect(fresh_migrated, autocommit=True) as conn:
        model_uri, model_sha = sklearn_version(conn, bucket, tmp_path)

    dag_run = run(dags)
    assert dag_run.state == "success"
    with psycopg.connect(fresh_migrated) as wh:
        assert_accounted(stored(wh), exp)
        sk1 = wh.execute("SELECT count(*) FROM predictions WHERE model_version = 'sk1'").fetchone()
        assert sk1 == (len(exp.loaded),)
        first = {**digests(wh, FULL_DIGEST), **digests(wh, {"rejected": REJECTED_DIGEST})}

    # every intermediate file is an S3 object with the sha256 its writer recorded, and nothing else is
    values = xcom_values(PIPELINE, dag_run.run_id)
    files = written_files(values)
    # events, rejected, the landing files read, processed, the champion's and sk1's predictions
    assert len(files) == 6
    for ref in files:
        assert ref["path"].startswith(f"{bucket.root}/storage/{PIPELINE}/"), ref
        assert bucket.sha256(ref["path"]) == ref["sha256"], ref["path"]
    folder = f"storage/{PIPELINE}/{Interval(START, LOGICAL).key}/"
    listed = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix=folder)["Contents"]
    marker = [o["Key"] for o in listed if o["Key"].endswith("/_run.json")]  # the run folder's owner
    assert len(marker) == 1
    assert {o["Key"] for o in listed} - set(marker) == {bucket.key(ref["path"]) for ref in files}

    # a rerun reads the same objects and changes no byte
    assert run(dags).state == "success"
    with psycopg.connect(fresh_migrated) as wh:
        assert {**digests(wh, FULL_DIGEST), **digests(wh, {"rejected": REJECTED_DIGEST})} == first

    # a changed object is refused, an intermediate file and the model artifact alike
    events = values["extract"][0]
    bucket.client.put_object(Bucket=bucket.name, Key=bucket.key(events["path"]), Body=b"changed")
    with pytest.raises(StorageIntegrityError, match="sha256"):
        read_frame(FileRef.from_xcom(events))
    assert artifacts.load_estimator(model_uri, model_sha) is not None
    bucket.client.put_object(Bucket=bucket.name, Key=bucket.key(model_uri), Body=b"changed")
    with pytest.raises(artifacts.UntrustedArtifactError, match="changed after registration"):
        artifacts.load_estimator(model_uri, model_sha)


def test_an_object_withdrawn_from_the_landing_prefix_is_a_smaller_source(
    dags: dict[str, Any], fresh_migrated: str, bucket: Bucket, tmp_path: Path
) -> None:
    mixed_partition(tmp_path / "landing", START, KEY)
    objectstore.upload(bucket.client, bucket.name, tmp_path / "landing", "landing")
    assert run(dags).state == "success"
    with psycopg.connect(fresh_migrated) as wh:
        first = {**digests(wh, FULL_DIGEST), **digests(wh, {"rejected": REJECTED_DIGEST})}
        ledger = wh.execute("SELECT ledger FROM run_audit WHERE interval_start = %s", (START,)).fetchone()[0]
    # the ledger names each object with the ETag the store listed
    for name, entry in ledger["files"].items():
        head = bucket.client.head_object(Bucket=bucket.name, Key=f"landing/{name}")
        expected = {"size": head["ContentLength"], "etag": head["ETag"].strip('"')}
        assert entry == {**expected, "records": entry["records"]} and entry["records"] > 0, name
    assert sum(entry["records"] for entry in ledger["files"].values()) == ledger["records"]
    # an object withdrawn from the landing prefix: the rerun is refused and nothing stored changes
    bucket.client.delete_object(Bucket=bucket.name, Key=f"landing/{KEY}/c.csv")
    dag_run = run(dags)
    assert dag_run.state == "failed"
    assert task_states(dag_run)["load_processed"] == ("failed", 1)
    with psycopg.connect(fresh_migrated) as wh:
        assert {**digests(wh, FULL_DIGEST), **digests(wh, {"rejected": REJECTED_DIGEST})} == first
