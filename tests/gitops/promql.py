"""Reading Grafana dashboards' PromQL with a real PromQL parser (promql-parser), and reading the
names a /metrics page exposes (prometheus-client's parser)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

# Labels Prometheus itself attaches to every scraped series (ServiceMonitor/PodMonitor targets).
TARGET_LABELS = frozenset({"namespace", "service", "job", "instance", "pod", "container", "endpoint"})

# Grafana's built-in interval variables, and dashboard variables, replaced before parsing.
_INTERVAL_VARS = re.compile(r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}")
_VARS = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*")


def substitute(expr: str) -> str:
    """A dashboard expression with Grafana variables replaced by plausible values."""
    return _VARS.sub("x", _INTERVAL_VARS.sub("5m", expr))


@dataclass
class Selector:
    name: str
    matchers: list[tuple[str, str, str]]  # (label, op, value); op one of = != =~ !~


@dataclass
class Query:
    expr: str
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)  # labels named in by (...) / on (...)


_OPS = [(promql_parser.MatchOp.Equal, "="), (promql_parser.MatchOp.NotEqual, "!="),
        (promql_parser.MatchOp.Re, "=~"), (promql_parser.MatchOp.NotRe, "!~")]


def _op(matcher: Any) -> str:
    for key, op in _OPS:
        if matcher.op == key:
            return op
    raise ValueError(f"unknown matcher op {matcher.op!r}")


def _walk(node: Any, query: Query) -> None:
    if isinstance(node, promql_parser.VectorSelector):
        matchers = [(m.name, _op(m), m.value) for m in node.matchers.matchers]
        name = node.name or next((v for n, o, v in matchers if n == "__name__" and o == "="), None)
        assert name, f"selector without a metric name in {query.expr!r}"
        query.selectors.append(Selector(name, [m for m in matchers if m[0] != "__name__"]))
    elif isinstance(node, promql_parser.MatrixSelector):
        _walk(node.vector_selector, query)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            _walk(arg, query)
    elif isinstance(node, promql_parser.AggregateExpr):
        if node.modifier is not None:
            query.grouping.update(node.modifier.labels)
        if node.param is not None:
            _walk(node.param, query)
        _walk(node.expr, query)
    elif isinstance(node, promql_parser.BinaryExpr):
        if node.modifier is not None and node.modifier.matching is not None:
            query.grouping.update(node.modifier.matching.labels)
        _walk(node.lhs, query)
        _walk(node.rhs, query)
    elif isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
        _walk(node.expr, query)
    elif isinstance(node, (promql_parser.NumberLiteral, promql_parser.StringLiteral)):
        pass
    else:
        raise TypeError(f"unexpected PromQL node {type(node).__name__} in {query.expr!r}")


def parse_query(expr: str) -> Query:
    """Parse one dashboard expression (fails on a PromQL syntax error)."""
    query = Query(expr)
    _walk(promql_parser.parse(substitute(expr)), query)
    return query


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")


def variable_queries(dashboard: dict) -> Iterator[tuple[str, Query, str]]:
    """(variable name, the selector it reads, the label) of each label_values() query variable."""
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = _LABEL_VALUES.match(q)
        assert m and m.group("selector"), f"variable {var['name']}: expected label_values(<metric selector>, label): {q!r}"
        yield var["name"], parse_query(m.group("selector")), m.group("label")


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def panel_queries(dashboard: dict) -> Iterator[tuple[dict, dict, Query]]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel, target, parse_query(target["expr"])


# ---------------------------------------------------------------------------- /metrics ----
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("", "_count", "_sum", "_created"), "gauge": ("",), "info": ("_info",),
             "gaugehistogram": ("_bucket", "_gcount", "_gsum"), "stateset": ("",), "unknown": ("",)}


@dataclass
class Exposition:
    """What one /metrics page exposes: every series name (also of families declared without a
    sample yet) and the label sets of the samples present."""
    names: set[str] = field(default_factory=set)
    samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def add_text(self, text: str) -> "Exposition":
        for family in text_string_to_metric_families(text):
            self.names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
            for sample in family.samples:
                self.names.add(sample.name)
                self.samples.setdefault(sample.name, []).append(dict(sample.labels))
        return self

    def label_names(self, name: str) -> set[str]:
        return {k for labels in self.samples.get(name, []) for k in labels}

    def has_value(self, name: str, label: str, value: str) -> bool:
        return any(labels.get(label) == value for labels in self.samples.get(name, []))
