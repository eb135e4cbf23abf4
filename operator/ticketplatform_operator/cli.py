"""ticketctl: run the operator, render manifests, print the CRD."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import pydantic
import yaml

from . import crd, model, render


def _load(path: str) -> list[dict[str, Any]]:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    with stream:
        return [d for d in yaml.safe_load_all(stream) if d and d.get("kind") == model.KIND]


def cmd_render(args: argparse.Namespace) -> int:
    docs = _load(args.filename)
    if not docs:
        print(f"error: no {model.KIND} found in {args.filename}", file=sys.stderr)
        return 2
    out = []
    for obj in docs:
        if args.namespace:
            obj.setdefault("metadata", {})["namespace"] = args.namespace
        try:
            platform = render.platform_from_object(obj)
        except pydantic.ValidationError as exc:
            print(f"error: {obj.get('metadata', {}).get('name')}: {model.describe_validation_error(exc)}", file=sys.stderr)
            return 1
        out += render.render(platform, include_monitoring=not args.no_monitoring)
    if any(not p["metadata"].get("ownerReferences") for p in out):
        print("# ownerReferences are omitted: the object has no uid until the apiserver assigns one.")
    print(yaml.safe_dump_all(out, sort_keys=False), end="")
    return 0


def cmd_crd(_: argparse.Namespace) -> int:
    print(crd.crd_yaml(), end="")
    return 0


def cmd_config(_: argparse.Namespace) -> int:
    from .config import OperatorConfig

    for field in OperatorConfig.model_fields.values():
        default = "unset" if field.default is None else field.default
        print(f"{field.alias}={default}\n    {field.description}")
    return 0


# Handlers that only feed the watch cache or kick a loop: Kopf would log "Handler ... succeeded"
# for every watch event, which at hundreds of platforms is most of the log and a good part of the CPU.
_WATCH_HANDLERS = ("Handler 'child-", "Handler 'platform_changed'", "Handler 'servicemonitor_crd_changed'")


def _quiet_watch_handlers(record: logging.LogRecord) -> bool:
    return not (record.levelno <= logging.INFO and str(record.msg).startswith(_WATCH_HANDLERS))


def _limit_malloc_arenas() -> None:
    """glibc gives threads that allocate their own malloc arenas (up to 8 per core), each keeping
    freed memory: with the reconcile pool that is tens of MiB of RSS for nothing. Two suffice."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc
        pass


def cmd_run(args: argparse.Namespace) -> int:
    import os

    import kopf

    from . import handlers  # importing registers the handlers
    from .config import ConfigError, OperatorConfig

    try:
        config = OperatorConfig.from_env(os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Kopf's JSON log format puts every log line, the operator's own included, on stdout.
    kopf.configure(verbose=False, log_format=kopf.LogFormat.JSON)
    logging.getLogger("kopf.objects").addFilter(_quiet_watch_handlers)
    _limit_malloc_arenas()
    kopf.run(
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace or [],
        liveness_endpoint=args.liveness,
        memo=kopf.Memo(runtime=handlers.Runtime(config)),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ticketctl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("-n", "--namespace", action="append", help="watch only this namespace (repeatable); default: all")
    run.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.set_defaults(fn=cmd_run)
    rend = sub.add_parser("render", help="print the manifests the operator would apply (no cluster needed)")
    rend.add_argument("-f", "--filename", required=True, help="TicketPlatform YAML file, or - for stdin")
    rend.add_argument("-n", "--namespace", help="namespace to render into when the file names none")
    rend.add_argument("--no-monitoring", action="store_true", help="leave out the ServiceMonitor (as when its CRD is absent)")
    rend.set_defaults(fn=cmd_render)
    sub.add_parser("crd", help="print the CRD generated from the model").set_defaults(fn=cmd_crd)
    sub.add_parser("config", help="print the operator's settings (environment variables) and their defaults").set_defaults(fn=cmd_config)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
