"""Users in DynamoDB.

Email uniqueness without a scan or an index: creating a user writes two items in one
``TransactWriteItems``, the user (``userId = <uuid>``) and an email claim
(``userId = "email#<lowercased email>"``), each with ``attribute_not_exists(userId)``. If the email
is taken the claim's condition fails and the whole transaction, user item included, is cancelled.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ticketing_common.aws import LazyClient
from user_service.config import Config

log = logging.getLogger("user_service.store")

EMAIL_PREFIX = "email#"


class EmailTaken(Exception):
    pass


class StoreUnavailable(Exception):
    pass


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _user_json(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": item["userId"]["S"],
        "name": item["name"]["S"],
        "email": item["email"]["S"],
        "created_at": item["createdAt"]["S"],
    }


class UserStore:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.table = config.table_name
        self._client = LazyClient("dynamodb", config.aws_region, config.aws_endpoint_url, read_timeout=5,
                                  max_pool_connections=50)
        self._table_ready = False

    @property
    def client(self):
        return self._client.get()

    # -- table ------------------------------------------------------------------------------
    def ensure_table(self) -> None:
        """Create the table when missing; safe to call from several processes at once."""
        if self._table_ready:
            return
        try:
            status = self.client.describe_table(TableName=self.table)["Table"]["TableStatus"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            if not self.config.create_table:
                raise StoreUnavailable(f"table {self.table} does not exist") from None
            log.info("creating DynamoDB table", extra={"table": self.table})
            try:
                self.client.create_table(
                    TableName=self.table,
                    KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as exc2:
                if exc2.response["Error"]["Code"] != "ResourceInUseException":
                    raise
            self.client.get_waiter("table_exists").wait(TableName=self.table,
                                                       WaiterConfig={"Delay": 1, "MaxAttempts": 30})
            status = "ACTIVE"
        if status != "ACTIVE":
            self.client.get_waiter("table_exists").wait(TableName=self.table,
                                                       WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        self._table_ready = True

    def check(self) -> dict[str, Any]:
        self.ensure_table()
        status = self.client.describe_table(TableName=self.table)["Table"]["TableStatus"]
        if status != "ACTIVE":
            raise StoreUnavailable(f"table {self.table} is {status}")
        return {"table": self.table}

    def _call(self, fn, **kwargs):
        try:
            self.ensure_table()
            return fn(**kwargs)
        except (BotoCoreError,) as exc:
            raise StoreUnavailable(str(exc)) from exc
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise
            raise StoreUnavailable(f"{code}: {exc.response['Error'].get('Message', '')}") from exc

    # -- users ------------------------------------------------------------------------------
    def create_user(self, name: str, email: str) -> dict[str, Any]:
        user_id = str(uuid.uuid4())
        created_at = _now_iso()
        normalized = email.lower()
        user_item = {
            "userId": {"S": user_id}, "itemType": {"S": "user"}, "name": {"S": name},
            "email": {"S": email}, "emailNormalized": {"S": normalized}, "createdAt": {"S": created_at},
        }
        claim_item = {
            "userId": {"S": EMAIL_PREFIX + normalized}, "itemType": {"S": "email-claim"},
            "ownerUserId": {"S": user_id}, "createdAt": {"S": created_at},
        }
        try:
            # The token makes boto3's retries idempotent: a retry of a write that went through
            # succeeds again instead of failing on its own email claim (a false 409).
            self._call(self.client.transact_write_items, ClientRequestToken=user_id, TransactItems=[
                {"Put": {"TableName": self.table, "Item": user_item,
                         "ConditionExpression": "attribute_not_exists(userId)"}},
                {"Put": {"TableName": self.table, "Item": claim_item,
                         "ConditionExpression": "attribute_not_exists(userId)"}},
            ])
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            codes = [r.get("Code") for r in reasons]
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise EmailTaken(email) from None
            if "ConditionalCheckFailed" in codes or not codes:
                # user id collision (practically impossible) or a backend without reasons
                if self.find_by_email(email) is not None:
                    raise EmailTaken(email) from None
            raise StoreUnavailable(f"transaction cancelled: {codes}") from exc
        return _user_json(user_item)

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        item = self._call(self.client.get_item, TableName=self.table, Key={"userId": {"S": user_id}},
                          ConsistentRead=True).get("Item")
        if not item or item.get("itemType", {}).get("S") != "user":
            return None
        return _user_json(item)

    def find_by_email(self, email: str) -> dict[str, Any] | None:
        claim = self._call(self.client.get_item, TableName=self.table,
                           Key={"userId": {"S": EMAIL_PREFIX + email.lower()}}, ConsistentRead=True).get("Item")
        if not claim:
            return None
        return self.get_user(claim["ownerUserId"]["S"])
