"""The ticket-generator Lambda against the moto server of stack/moto.sh (a real HTTP endpoint).

Two ways in:
- through the local event source, as in the local stack: an upload to the bucket -> S3 event
  notification -> SQS queue -> `python -m ticket_generator.local_invoker` (a subprocess, its JSON
  log captured to a file) -> handler();
- handler() called directly with a hand-built S3 event.

Every module run uses its own bucket and queue names, so a running `stack/lambda.sh` (which polls
the default queue) never competes for these messages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError

from ticket_generator import handler as handler_mod
from ticket_generator.handler import MAX_UPLOAD_BYTES, handler, ticket_key_for
from ticket_generator.local_invoker import LocalInvoker

REPO_DIR = Path(__file__).resolve().parents[2]
LAMBDA_DIR = REPO_DIR / "lambda"
MB = 1024 * 1024


# -- fixtures ----------------------------------------------------------------------------------


def _aws_env(moto) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto.endpoint_url,
        "AWS_REGION": moto.region,
        "AWS_DEFAULT_REGION": moto.region,
        "AWS_ACCESS_KEY_ID": moto.access_key_id,
        "AWS_SECRET_ACCESS_KEY": moto.secret_access_key,
    }


@pytest.fixture
def aws_env(moto, monkeypatch):
    """The handler reads its endpoint from the environment, as in Lambda."""
    for key, value in _aws_env(moto).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    handler_mod.reset_clients()
    yield
    handler_mod.reset_clients()


def _empty_and_delete_bucket(s3, bucket: str) -> None:
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
    except ClientError:
        pass


def _delete_queues(sqs, *names: str) -> None:
    for name in names:
        try:
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError:
            pass


@pytest.fixture
def plain_bucket(moto):
    """A bucket without notifications, for direct handler() calls."""
    s3 = moto.client("s3")
    bucket = f"tp-test-direct-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    yield bucket
    _empty_and_delete_bucket(s3, bucket)


class InvokerProcess:
    """`python -m ticket_generator.local_invoker --setup` on its own bucket and queue."""

    def __init__(self, moto, log_path: Path):
        suffix = uuid.uuid4().hex[:10]
        self.bucket = f"tp-test-uploads-{suffix}"
        self.queue = f"tp-test-tickets-{suffix}"
        self.s3 = moto.client("s3")
        self.sqs = moto.client("sqs")
        self.log_path = log_path
        env = {**os.environ, **_aws_env(moto), "TICKETS_BUCKET": self.bucket, "TICKET_QUEUE_NAME": self.queue,
               "PYTHONPATH": str(LAMBDA_DIR), "PYTHONUNBUFFERED": "1"}
        env.pop("AWS_ENDPOINT_URL_S3", None)
        self._log_file = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ticket_generator.local_invoker", "--setup", "--wait-seconds", "1"],
            stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=REPO_DIR,
        )

    def records(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "log record") -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if predicate(record):
                    return record
            if self.proc.poll() is not None:
                raise AssertionError(f"invoker exited {self.proc.returncode}:\n{self.log_path.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {timeout}s; invoker log:\n{self.log_path.read_text()[-4000:]}")

    def ticket_keys(self) -> list[str]:
        resp = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="tickets/")
        return sorted(o["Key"] for o in resp.get("Contents", []))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


@pytest.fixture(scope="module")
def invoker(moto, tmp_path_factory):
    proc = InvokerProcess(moto, tmp_path_factory.mktemp("invoker") / "invoker.log")
    try:
        proc.wait_for(lambda r: r.get("event") == "invoker.polling", timeout=60, what="invoker.polling")
        yield proc
    finally:
        proc.stop()
        _empty_and_delete_bucket(proc.s3, proc.bucket)
        _delete_queues(proc.sqs, proc.queue, f"{proc.queue}-dlq")


def _is(event: str, key: str, **fields):
    return lambda r: r.get("event") == event and r.get("key") == key and all(r.get(k) == v for k, v in fields.items())


def _s3_event(bucket: str, key: str, size: int, etag: str = "0123456789abcdef", name: str = "ObjectCreated:Put"):
    """The shape S3 sends (docs: notification-content-structure), key URL-encoded."""
    return {
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-01-02T10:00:00.000Z",
            "eventName": name,
            "userIdentity": {"principalId": "AWS:TESTER"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "REQ", "x-amz-id-2": "ID2"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "ticket-generator",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "OWNER"}, "arn": f"arn:aws:s3:::{bucket}"},
                "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": "0055AED6DCD90281E5"},
            },
        }]
    }


CONTEXT = SimpleNamespace(aws_request_id="test-request-1", function_name="ticket-generator")


# -- through the local event source (S3 notification -> SQS -> invoker -> handler) --------------


def test_small_upload_produces_receipt(invoker):
    key = "uploads/alice id proof.pdf"
    body = b"%PDF-1.4 fake id proof " + b"x" * 10_000
    invoker.s3.put_object(Bucket=invoker.bucket, Key=key, Body=body, ContentType="application/pdf")

    generated = invoker.wait_for(_is("ticket.generated", key), what=f"ticket.generated for {key}")
    ticket_key = "tickets/alice id proof_TICKET.txt"
    assert generated["ticket_key"] == ticket_key
    assert generated["size"] == len(body)

    obj = invoker.s3.get_object(Bucket=invoker.bucket, Key=ticket_key)
    text = obj["Body"].read().decode()
    assert obj["ContentType"].startswith("text/plain")
    assert obj["Metadata"]["ticket-id"] == generated["ticket_id"]
    assert f"Ticket ID     : {generated['ticket_id']}" in text
    assert "Original file : alice id proof.pdf" in text
    assert f"s3://{invoker.bucket}/{key}" in text
    assert f"({len(body):,} bytes)" in text
    assert "application/pdf" in text

    # the receipt's own notification reaches the handler and is skipped: no recursion
    invoker.wait_for(_is("ticket.skipped", ticket_key, reason="ticket_output_prefix"),
                     what="the receipt's own event being skipped")
    ok = invoker.wait_for(lambda r: r.get("event") == "invoke.ok" and r.get("keys") == [ticket_key],
                          what="the receipt's message being deleted")
    assert ok["generated"] == 0
    assert invoker.ticket_keys() == [ticket_key]


def test_upload_over_5mb_produces_no_receipt_and_is_logged(invoker):
    key = "uploads/huge-scan.tiff"
    invoker.s3.put_object(Bucket=invoker.bucket, Key=key, Body=b"\0" * (MAX_UPLOAD_BYTES + 1))

    skipped = invoker.wait_for(_is("ticket.skipped", key, reason="too_large"), what=f"too_large skip of {key}")
    assert skipped["level"] == "WARNING"
    assert skipped["size"] == 5 * MB + 1 and skipped["limit"] == 5 * MB
    invoker.wait_for(lambda r: r.get("event") == "invoke.ok" and r.get("keys") == [key],
                     what="the message being deleted")
    with pytest.raises(ClientError):
        invoker.s3.head_object(Bucket=invoker.bucket, Key=ticket_key_for(key))
    assert ticket_key_for(key) not in invoker.ticket_keys()
    assert not [r for r in invoker.records() if r.get("event") == "ticket.generated" and r.get("key") == key]


def test_upload_under_tickets_triggers_nothing(invoker):
    before = invoker.ticket_keys()
    key = "tickets/hand-made note.txt"
    invoker.s3.put_object(Bucket=invoker.bucket, Key=key, Body=b"not an ID proof")

    invoker.wait_for(_is("ticket.skipped", key, reason="ticket_output_prefix"), what=f"skip of {key}")
    invoker.wait_for(lambda r: r.get("event") == "invoke.ok" and r.get("keys") == [key], what="message deleted")
    time.sleep(2)  # two more long polls: nothing else may appear

    assert invoker.ticket_keys() == sorted(before + [key])
    assert not [r for r in invoker.records() if r.get("event") == "ticket.generated"
                and str(r.get("key", "")).startswith("tickets/")]
    assert not [r for r in invoker.records() if r.get("event") in ("ticket.failed", "invoke.failed")]


def test_setup_is_idempotent_and_keeps_other_notifications(invoker, aws_env):
    # somebody else's notification on the same bucket
    arn = invoker.sqs.get_queue_attributes(
        QueueUrl=invoker.sqs.get_queue_url(QueueName=invoker.queue)["QueueUrl"], AttributeNames=["QueueArn"],
    )["Attributes"]["QueueArn"]
    current = invoker.s3.get_bucket_notification_configuration(Bucket=invoker.bucket)
    other = {"Id": "someone-else", "QueueArn": arn, "Events": ["s3:ObjectRemoved:*"]}
    invoker.s3.put_bucket_notification_configuration(
        Bucket=invoker.bucket,
        NotificationConfiguration={"QueueConfigurations": current["QueueConfigurations"] + [other]})

    for _ in range(2):
        LocalInvoker(invoker.bucket, invoker.queue).setup()

    configs = invoker.s3.get_bucket_notification_configuration(Bucket=invoker.bucket)["QueueConfigurations"]
    assert sorted(c["Id"] for c in configs) == ["someone-else", "ticket-generator"]
    ours = next(c for c in configs if c["Id"] == "ticket-generator")
    assert ours["Events"] == ["s3:ObjectCreated:*"] and ours["QueueArn"] == arn


# -- the invoker's delivery semantics (in-process, with a handler that fails once) -------------


def test_failed_invocation_is_left_for_redelivery(moto, aws_env, capsys):
    suffix = uuid.uuid4().hex[:10]
    bucket, queue = f"tp-test-retry-{suffix}", f"tp-test-retry-{suffix}"
    calls: list[int] = []

    def flaky(event, context):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated failure")
        return handler(event, context)

    inv = LocalInvoker(bucket, queue, wait_seconds=1, visibility_timeout=30, handler=flaky)
    info = inv.setup()
    thread = threading.Thread(target=inv.run, daemon=True)
    thread.start()
    try:
        moto.client("s3").put_object(Bucket=bucket, Key="id.png", Body=b"png")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(calls) < 2:
            time.sleep(0.1)
        assert len(calls) >= 2, "the failed message was not delivered again"
        deadline = time.monotonic() + 10
        s3 = moto.client("s3")
        while time.monotonic() < deadline:
            if s3.list_objects_v2(Bucket=bucket, Prefix="tickets/").get("KeyCount"):
                break
            time.sleep(0.1)
        assert s3.head_object(Bucket=bucket, Key="tickets/id_TICKET.txt")
    finally:
        inv.stop()
        thread.join(timeout=15)
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    failed = [r for r in logs if r["event"] == "invoke.failed"]
    assert failed and failed[0]["keys"] == ["id.png"] and "simulated failure" in failed[0]["error"]
    ok = [r for r in logs if r["event"] == "invoke.ok" and r["keys"] == ["id.png"]]
    assert ok and ok[0]["receive_count"] == 2
    # deleted after success: the queue is empty
    attrs = moto.client("sqs").get_queue_attributes(
        QueueUrl=info["queue_url"], AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    _empty_and_delete_bucket(moto.client("s3"), bucket)
    _delete_queues(moto.client("sqs"), queue, f"{queue}-dlq")


# -- handler() called directly with a hand-built S3 event ---------------------------------------


def test_direct_handler_call(moto, aws_env, plain_bucket):
    s3 = moto.client("s3")
    key = "uploads/Jane Doe's passport+scan.jpg"  # space, quote and plus: URL-encoded in the event
    s3.put_object(Bucket=plain_bucket, Key=key, Body=b"j" * 2048, ContentType="image/jpeg")
    event = _s3_event(plain_bucket, key, 2048)
    assert event["Records"][0]["s3"]["object"]["key"] == "uploads/Jane+Doe%27s+passport%2Bscan.jpg"

    summary = handler(event, CONTEXT)

    assert summary["records"] == 1 and summary["skipped"] == [] and summary["failed"] == []
    (generated,) = summary["generated"]
    assert generated["key"] == key
    assert generated["ticket_key"] == "tickets/Jane Doe's passport+scan_TICKET.txt"
    assert generated["ticket_id"].startswith("TKT-")
    text = s3.get_object(Bucket=plain_bucket, Key=generated["ticket_key"])["Body"].read().decode()
    assert generated["ticket_id"] in text
    assert "Jane Doe's passport+scan.jpg" in text
    assert "2,048 bytes" in text and "image/jpeg" in text
    assert "Uploaded at   : 2026-01-02T10:00:00.000Z" in text
    assert "Request ID    : test-request-1" in text

    # the same event again (a retry) issues the same ticket, not a second one
    again = handler(event, CONTEXT)
    assert again["generated"][0]["ticket_id"] == generated["ticket_id"]
    assert s3.list_objects_v2(Bucket=plain_bucket, Prefix="tickets/")["KeyCount"] == 1


def test_direct_size_limit_by_event_and_by_head_object(moto, aws_env, plain_bucket, capsys):
    s3 = moto.client("s3")
    s3.put_object(Bucket=plain_bucket, Key="small.pdf", Body=b"s" * 100)
    s3.put_object(Bucket=plain_bucket, Key="big.pdf", Body=b"b" * (5 * MB + 1))
    s3.put_object(Bucket=plain_bucket, Key="exactly-5mb.pdf", Body=b"e" * (5 * MB))

    # the event says too large: refused without reading S3
    by_event = handler(_s3_event(plain_bucket, "small.pdf", 6 * MB), CONTEXT)
    # the event understates the size: head_object catches it
    by_head = handler(_s3_event(plain_bucket, "big.pdf", 100), CONTEXT)
    at_limit = handler(_s3_event(plain_bucket, "exactly-5mb.pdf", 5 * MB), CONTEXT)

    assert by_event["generated"] == [] and by_event["skipped"][0]["reason"] == "too_large"
    assert by_event["skipped"][0]["source"] == "event"
    assert by_head["generated"] == [] and by_head["skipped"][0]["reason"] == "too_large"
    assert by_head["skipped"][0]["source"] == "head_object" and by_head["skipped"][0]["size"] == 5 * MB + 1
    assert at_limit["generated"][0]["ticket_key"] == "tickets/exactly-5mb_TICKET.txt"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=plain_bucket, Prefix="tickets/").get("Contents", [])]
    assert keys == ["tickets/exactly-5mb_TICKET.txt"]

    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    too_large = [r for r in logs if r["event"] == "ticket.skipped" and r["reason"] == "too_large"]
    assert {r["key"] for r in too_large} == {"small.pdf", "big.pdf"}
    assert all(r["level"] == "WARNING" and r["limit"] == 5 * MB for r in too_large)


def test_direct_skips_without_touching_s3(monkeypatch, capsys):
    # an endpoint where nothing listens: any S3 call would fail the record
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    handler_mod.reset_clients()
    events = [
        _s3_event("b", "tickets/someone_TICKET.txt", 10),
        _s3_event("b", "uploads/removed.pdf", 10, name="ObjectRemoved:Delete"),
        _s3_event("b", "uploads/folder/", 0),
        {"Records": []},
    ]
    summaries = [handler(e, CONTEXT) for e in events]
    assert [s["skipped"][0]["reason"] for s in summaries[:3]] == [
        "ticket_output_prefix", "not_an_upload", "folder_marker"]
    assert summaries[3] == {"records": 0, "generated": [], "skipped": [], "failed": []}
    assert handler_mod._clients == {}, "no S3 client may be built for skipped records"
    capsys.readouterr()


def test_direct_failure_raises_for_retry(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    handler_mod.reset_clients()
    try:
        with pytest.raises(handler_mod.TicketGenerationError) as info:
            handler(_s3_event("b", "uploads/x.pdf", 10), CONTEXT)
        assert info.value.summary["failed"][0]["key"] == "uploads/x.pdf"
    finally:
        handler_mod.reset_clients()


def test_import_opens_no_connection():
    code = "import ticket_generator.handler as h, ticket_generator.local_invoker; assert h._clients == {}; print('ok')"
    env = {**os.environ, "PYTHONPATH": str(LAMBDA_DIR), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
