"""Local stand-in for Lambda's S3 trigger: S3 notification -> SQS queue -> this loop -> handler().

moto (the local AWS endpoint) cannot run a Python Lambda without Docker, but it does deliver S3
event notifications to SQS. This process long-polls that queue and calls
``ticket_generator.handler.handler`` with the S3 event found in each message body, which is the
same event shape Lambda would receive. A message is deleted only after the handler succeeded; on
failure it is left in the queue and comes back after a back-off (like an SQS event source mapping),
and after ``--max-receives`` deliveries SQS moves it to the dead-letter queue.

    PYTHONPATH=lambda python -m ticket_generator.local_invoker --setup           # run
    PYTHONPATH=lambda python -m ticket_generator.local_invoker --setup-only      # just wire S3->SQS

``--setup`` creates, idempotently, the uploads bucket, the queue (+ DLQ) and the bucket's
``s3:ObjectCreated:*`` notification to the queue (other notifications on the bucket are kept).
Environment: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID/SECRET, TICKETS_BUCKET,
TICKET_QUEUE_NAME.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from . import jsonlog
from .handler import DEFAULT_BUCKET, handler as default_handler

DEFAULT_QUEUE = "ticket-generator-events"
NOTIFICATION_ID = "ticket-generator"
LOGGER = "ticket_generator.local_invoker"


def _log(level: str, event: str, **fields: Any) -> None:
    jsonlog.log(level, event, logger=LOGGER, **fields)


class _Context:
    """The parts of Lambda's context object a handler commonly uses."""

    def __init__(self, request_id: str, timeout_s: float, function_name: str):
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalInvoker:
    def __init__(
        self,
        bucket: str | None = None,
        queue_name: str | None = None,
        *,
        wait_seconds: int = 5,
        visibility_timeout: int = 60,
        max_receives: int = 5,
        handler: Callable[[dict[str, Any], Any], Any] = default_handler,
        function_name: str = "ticket-generator",
    ):
        self.bucket = bucket or os.environ.get("TICKETS_BUCKET") or DEFAULT_BUCKET
        self.queue_name = queue_name or os.environ.get("TICKET_QUEUE_NAME") or DEFAULT_QUEUE
        self.wait_seconds = max(0, min(20, int(wait_seconds)))
        self.visibility_timeout = int(visibility_timeout)
        self.max_receives = int(max_receives)
        self.handler = handler
        self.function_name = function_name
        self.queue_url: str | None = None
        self._stop = threading.Event()
        self._sqs = None
        self._s3 = None

    # -- clients (built on first use) ------------------------------------------------------------

    def _client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        config = Config(
            connect_timeout=5,
            read_timeout=self.wait_seconds + 10,  # a long poll must not look like a dead connection
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path"} if endpoint and service == "s3" else None,
        )
        return boto3.client(service, region_name=region, endpoint_url=endpoint, config=config)

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = self._client("sqs")
        return self._sqs

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = self._client("s3")
        return self._s3

    # -- setup -----------------------------------------------------------------------------------

    def setup(self) -> dict[str, str]:
        """Bucket, queue (+ DLQ) and the bucket notification; safe to run any number of times."""
        from botocore.exceptions import ClientError

        s3, sqs = self.s3, self.sqs
        try:
            s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            region = s3.meta.region_name
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                s3.create_bucket(**kwargs)
                _log("INFO", "setup.bucket_created", bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        dlq_url = sqs.create_queue(QueueName=f"{self.queue_name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = self._create_or_update_queue(dlq_arn)
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_url = queue_url

        current = s3.get_bucket_notification_configuration(Bucket=self.bucket)
        current.pop("ResponseMetadata", None)
        ours = {"Id": NOTIFICATION_ID, "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}
        queues = [q for q in current.get("QueueConfigurations", []) if q.get("Id") != NOTIFICATION_ID]
        existing = [q for q in current.get("QueueConfigurations", []) if q.get("Id") == NOTIFICATION_ID]
        if existing and existing[0].get("QueueArn") == queue_arn and existing[0].get("Events") == ours["Events"] \
                and not existing[0].get("Filter"):
            _log("INFO", "setup.ready", bucket=self.bucket, queue=queue_url, notification="unchanged")
        else:
            config = {k: v for k, v in current.items() if k in (
                "TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations",
                "EventBridgeConfiguration")}
            config["QueueConfigurations"] = queues + [ours]
            s3.put_bucket_notification_configuration(Bucket=self.bucket, NotificationConfiguration=config)
            _log("INFO", "setup.ready", bucket=self.bucket, queue=queue_url, notification="written")
        return {"bucket": self.bucket, "queue_url": queue_url, "queue_arn": queue_arn, "dlq_url": dlq_url}

    def _create_or_update_queue(self, dlq_arn: str) -> str:
        from botocore.exceptions import ClientError

        attributes = {
            "VisibilityTimeout": str(self.visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": str(self.wait_seconds),
            "MessageRetentionPeriod": str(4 * 24 * 3600),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(self.max_receives)}),
        }
        try:
            return self.sqs.create_queue(QueueName=self.queue_name, Attributes=attributes)["QueueUrl"]
        except ClientError as exc:
            # the queue exists with other attributes (created by an older version): converge them
            if "QueueAlreadyExists" not in str(exc.response.get("Error", {}).get("Code", "")):
                raise
            url = self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
            return url

    # -- the loop --------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def _queue_url(self) -> str:
        if self.queue_url is None:
            self.queue_url = self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        return self.queue_url

    def poll_once(self) -> int:
        """One long poll; returns how many messages were received."""
        url = self._queue_url()
        response = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = response.get("Messages", [])
        for message in messages:
            self._dispatch(url, message)
        return len(messages)

    def _dispatch(self, url: str, message: dict[str, Any]) -> None:
        message_id = message.get("MessageId")
        receives = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
        try:
            body = json.loads(message.get("Body") or "")
        except json.JSONDecodeError as exc:
            _log("ERROR", "message.discarded", message_id=message_id, reason=f"body is not JSON: {exc}")
            self._delete(url, message)
            return
        if isinstance(body, dict) and body.get("Event") == "s3:TestEvent":
            _log("INFO", "message.test_event", message_id=message_id, bucket=body.get("Bucket"))
            self._delete(url, message)
            return
        if not isinstance(body, dict) or not isinstance(body.get("Records"), list):
            _log("ERROR", "message.discarded", message_id=message_id, reason="not an S3 event")
            self._delete(url, message)
            return

        keys = [unquote_plus(str(((r.get("s3") or {}).get("object") or {}).get("key") or ""))
                for r in body["Records"] if isinstance(r, dict)]
        context = _Context(message_id or str(uuid.uuid4()), self.visibility_timeout, self.function_name)
        started = time.monotonic()
        try:
            result = self.handler(body, context)
        except Exception as exc:  # noqa: BLE001 - any failure: leave the message for redelivery
            backoff = min(self.visibility_timeout, 2 ** min(receives, 6))
            _log("ERROR", "invoke.failed", message_id=message_id, keys=keys, receive_count=receives,
                 error=f"{type(exc).__name__}: {exc}", retry_in_s=backoff)
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=backoff)
            except Exception:  # noqa: BLE001 - the visibility timeout brings it back anyway
                pass
            return
        self._delete(url, message)
        _log("INFO", "invoke.ok", message_id=message_id, keys=keys, receive_count=receives,
             duration_ms=round((time.monotonic() - started) * 1000, 1),
             generated=len(result.get("generated", [])) if isinstance(result, dict) else None,
             skipped=len(result.get("skipped", [])) if isinstance(result, dict) else None)

    def _delete(self, url: str, message: dict[str, Any]) -> None:
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def run(self, do_setup: bool = False) -> None:
        """Poll until stop(); connection errors and a vanished queue (moto restarted) are retried."""
        from botocore.exceptions import BotoCoreError, ClientError

        backoff = 1.0
        needs_setup = do_setup
        _log("INFO", "invoker.starting", bucket=self.bucket, queue=self.queue_name,
             endpoint=os.environ.get("AWS_ENDPOINT_URL"), wait_seconds=self.wait_seconds)
        announced = False
        while not self._stop.is_set():
            try:
                if needs_setup:
                    self.setup()
                    needs_setup = False
                if not announced:
                    _log("INFO", "invoker.polling", queue_url=self._queue_url())
                    announced = True
                self.poll_once()
                backoff = 1.0
            except (BotoCoreError, ClientError) as exc:
                code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
                if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
                    # moto keeps state in memory: after its restart the wiring is gone; redo it
                    self.queue_url = None
                    needs_setup = do_setup
                _log("WARNING", "invoker.retrying", error=f"{type(exc).__name__}: {exc}", retry_in_s=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        _log("INFO", "invoker.stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", default=None, help="uploads bucket (default: $TICKETS_BUCKET or %s)" % DEFAULT_BUCKET)
    parser.add_argument("--queue", default=None, help="queue name (default: $TICKET_QUEUE_NAME or %s)" % DEFAULT_QUEUE)
    parser.add_argument("--setup", action="store_true", help="create bucket, queue and notification first")
    parser.add_argument("--setup-only", action="store_true", help="only create bucket, queue and notification")
    parser.add_argument("--wait-seconds", type=int, default=5, help="SQS long-poll wait (0-20)")
    parser.add_argument("--visibility-timeout", type=int, default=60)
    parser.add_argument("--max-receives", type=int, default=5, help="deliveries before the DLQ")
    args = parser.parse_args(argv)

    invoker = LocalInvoker(args.bucket, args.queue, wait_seconds=args.wait_seconds,
                           visibility_timeout=args.visibility_timeout, max_receives=args.max_receives)
    if args.setup_only:
        print(json.dumps(invoker.setup()))
        return 0

    def _on_signal(signum: int, _frame: Any) -> None:
        _log("INFO", "invoker.signal", signal=signal.Signals(signum).name)
        invoker.stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    invoker.run(do_setup=args.setup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
