"""``python -m ticketing_common.local_topics NAME:PARTITIONS ...``: create the Kafka topics the
services use when they are missing, for the local stack without the operator (in a cluster the
operator owns the topics). An existing topic is adopted as it is. The broker never auto-creates."""
from __future__ import annotations

import os
import sys
import time


def ensure_topics(bootstrap_servers: str, specs: list[tuple[str, int]], timeout: float = 60.0) -> list[str]:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="local-topics")
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    created = []
    try:
        existing = set(admin.list_topics())
        for name, partitions in specs:
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name=name, num_partitions=partitions, replication_factor=1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created


def main(argv: list[str]) -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    specs = []
    for arg in argv:
        name, _, partitions = arg.partition(":")
        specs.append((name, int(partitions or 1)))
    created = ensure_topics(bootstrap, specs)
    print(f"topics: created {', '.join(created) if created else 'none'}; present: {', '.join(n for n, _ in specs)}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
