"""Deletes the users a load-test run registered from the local stack's DynamoDB table.

    .venv/bin/python loadtest/cleanup_users.py --prefix lt-1a2b3c4d-     (run.sh does this after a run)

Why: on the local stack DynamoDB is moto, whose TransactWriteItems deep-copies the whole table
(for its rollback) on every call, so registering a user costs time in proportion to the users
already in the table. A full run registers tens of thousands; left behind, they would slow every
later registration on the local stack (and the next load test). Each user is two items: the user
(`email` starts with the prefix) and its email claim (`userId = "email#<email>"`). Bookings made by
these users stay in PostgreSQL. Settings come from the environment (`stack/dataplane.sh env`):
AWS_ENDPOINT_URL, AWS_REGION, USERS_TABLE (default ticket-booking-users).
Uses boto3 from the project's .venv (not the load-test venv).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import boto3
from boto3.dynamodb.conditions import Attr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", required=True, help="email prefix of the run's users, e.g. lt-1a2b3c4d-")
    parser.add_argument("--table", default=os.environ.get("USERS_TABLE", "ticket-booking-users"))
    args = parser.parse_args(argv)
    if not args.prefix.startswith("lt-") or len(args.prefix) < 6:
        print("cleanup_users: refusing a prefix that does not look like a load-test run's (lt-<id>-)", file=sys.stderr)
        return 2
    prefix = args.prefix.lower()
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        print("cleanup_users: no AWS_ENDPOINT_URL: only the local stack's table is cleaned", file=sys.stderr)
        return 2
    table = boto3.resource("dynamodb", endpoint_url=endpoint,
                           region_name=os.environ.get("AWS_REGION", "us-east-1")).Table(args.table)
    started = time.monotonic()
    keys: list[str] = []
    scan = {"ProjectionExpression": "userId",
            "FilterExpression": Attr("emailNormalized").begins_with(prefix) | Attr("userId").begins_with("email#" + prefix)}
    while True:
        page = table.scan(**scan)
        keys.extend(item["userId"] for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    with table.batch_writer() as batch:
        for key in keys:
            batch.delete_item(Key={"userId": key})
    print(f"[loadtest] cleanup: deleted {len(keys)} items ({len(keys) // 2} users) with prefix {prefix} "
          f"from {args.table} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
