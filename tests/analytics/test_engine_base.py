"""The engine contract (base.py) and the job's settings, without Kafka or Flink."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ticketplatform_operator.analytics import (RUNNING, AnalyticsEngine, JobRequest, JobStatus, make_engine,
                                               request_from_spec)
from ticketplatform_operator.analytics.base import backoff_seconds
from ticketplatform_operator.model import parse_spec

REPO_DIR = Path(__file__).resolve().parents[2]


def load_job_module():
    spec = importlib.util.spec_from_file_location("analytics_job", REPO_DIR / "flink" / "analytics_job.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up there
    spec.loader.exec_module(module)   # PyFlink is imported only when the job runs
    return module


def test_spec_hash_follows_the_job_shaping_fields():
    a = JobRequest.build("ns", "tp", window_seconds=60)
    assert a.spec_hash == JobRequest.build("ns", "tp", window_seconds=60).spec_hash
    assert a.spec_hash == JobRequest.build("other-ns", "other", window_seconds=60).spec_hash  # identity is not spec
    for change in (dict(window_seconds=30), dict(parallelism=2), dict(bootstrap_servers="k:9092"),
                   dict(source_topic="b2"), dict(out_of_orderness_seconds=9), dict(cluster_name="c2"),
                   dict(flink_properties={"a": "b"})):
        assert JobRequest.build("ns", "tp", **{"window_seconds": 60, **change}).spec_hash != a.spec_hash, change
    assert a.group_id == "tp-analytics-ns-tp"


def test_request_from_spec_maps_the_crd_fields():
    spec = parse_spec({
        "kafka": {"bootstrapServers": "b-1:9092", "topics": {"bookings": {"name": "bk"}, "results": {"name": "rs"}}},
        "analytics": {"engine": "dataproc", "windowSeconds": 30, "outOfOrdernessSeconds": 3, "parallelism": 2,
                      "dataproc": {"projectId": "p", "region": "r", "cluster": "c",
                                   "jobFileUri": "gs://b/job.py", "connectorJarUri": "gs://b/k.jar"}},
    })
    req = request_from_spec("ns", "tp", spec, checkpoint_interval_seconds=10)
    assert (req.window_seconds, req.out_of_orderness_seconds, req.parallelism) == (30, 3, 2)
    assert (req.bootstrap_servers, req.source_topic, req.results_topic) == ("b-1:9092", "bk", "rs")
    assert (req.project_id, req.region, req.cluster_name) == ("p", "r", "c")
    assert (req.job_file_uri, req.connector_jar_uri, req.checkpoint_interval_seconds) == ("gs://b/job.py", "gs://b/k.jar", 10)
    assert req.spec_hash == req.compute_spec_hash()
    local = request_from_spec("ns", "tp", parse_spec({}))
    assert local.job_file == "flink/analytics_job.py" and local.project_id is None and local.window_seconds == 60


def test_job_status_round_trip_and_evolve():
    s = JobStatus(job_id="j", state="PENDING", spec_hash="h", last_state_change="2030-01-01T00:00:00Z")
    assert JobStatus.from_status(s.to_status()) == s
    assert JobStatus.from_status({}) is None and JobStatus.from_status({"state": "NotManaged"}) is None
    same = s.evolve(message="still pending")
    assert same.last_state_change == s.last_state_change
    moved = s.evolve(state=RUNNING)
    assert moved.last_state_change != s.last_state_change


def test_engines_satisfy_the_protocol(tmp_path):
    assert isinstance(make_engine("local", run_dir=tmp_path, supervise_interval=None), AnalyticsEngine)
    with pytest.raises(ValueError):
        make_engine("emr")


def test_backoff_doubles_and_caps():
    assert [backoff_seconds(n, 2, 30) for n in range(0, 7)] == [0, 2, 4, 8, 16, 30, 30]


def test_job_settings_from_args_and_environment():
    job = load_job_module()
    cfg, _ = job.parse_args(["--checkpoint-dir", "/tmp/c", "--window", "2", "--out-of-orderness", "1500ms"], environ={})
    assert (cfg.window_seconds, cfg.out_of_orderness_ms, cfg.checkpoint_dir) == (2, 1500, "/tmp/c")
    env = {"TP_ANALYTICS_WINDOW": "1m", "TP_ANALYTICS_CHECKPOINT_DIR": "/tmp/e", "KAFKA_BOOTSTRAP_SERVERS": "k:1",
           "TP_ANALYTICS_GROUP_ID": "g", "TP_ANALYTICS_PARALLELISM": "3"}
    cfg, _ = job.parse_args([], environ=env)
    assert (cfg.window_seconds, cfg.checkpoint_dir, cfg.bootstrap_servers, cfg.group_id, cfg.parallelism) == (60, "/tmp/e", "k:1", "g", 3)
    assert cfg.tx_prefix == "g-tx"
    with pytest.raises(SystemExit):
        job.parse_args([], environ={})        # no checkpoint dir: refused
    with pytest.raises(SystemExit):
        job.parse_args(["--checkpoint-dir", "/c", "--window", "1.5s"], environ={})


def test_job_sql_and_flink_settings():
    job = load_job_module()
    cfg, _ = job.parse_args(["--checkpoint-dir", "rel/ckpt", "--window", "90", "--source-topic", "it's"], environ={})
    source, sink, view, insert = job.build_sql(cfg)
    assert "'topic' = 'it''s'" in source                        # quoted
    assert "'properties.isolation.level' = 'read_committed'" in source
    assert "WATERMARK FOR event_time AS event_time - INTERVAL '0 00:00:05.000' DAY TO SECOND(3)" in source
    assert "'sink.delivery-guarantee' = 'exactly-once'" in sink
    assert "INTERVAL '0 00:01:30.000' DAY TO SECOND(3)" in insert
    conf = job.flink_config(cfg, "/tmp/c/j/chk-3")
    assert conf["execution.checkpointing.dir"] == f"file://{Path('rel/ckpt').resolve()}"
    assert conf["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"
    assert conf["execution.state-recovery.path"] == "/tmp/c/j/chk-3"


def test_latest_checkpoint_skips_incomplete_ones(tmp_path):
    job = load_job_module()
    assert job.latest_checkpoint(str(tmp_path)) is None
    for job_id, n, complete in (("a", 3, True), ("b", 7, True), ("b", 8, False)):
        d = tmp_path / job_id / f"chk-{n}"
        d.mkdir(parents=True)
        if complete:
            (d / "_metadata").write_text("x")
    assert job.latest_checkpoint(str(tmp_path)) == str(tmp_path / "b" / "chk-7")
    assert job.latest_checkpoint(f"file://{tmp_path}") == str(tmp_path / "b" / "chk-7")
