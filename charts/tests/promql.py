"""The metrics the controller exports, and what a PromQL expression (of the Grafana dashboard or of
the PrometheusRule) uses of them: metric names, label names, functions.

A small tokenizer, not a full PromQL parser: enough to find every metric name and every label an
expression groups, joins, matches or names in a legend, so a renamed metric or label fails a test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Every series the controller's /metrics serves (crates/vault-auth-kubernetes/src/metrics.rs and
#: process_metrics.rs), with the labels each carries, plus Prometheus' own `up`. Keep in sync with
#: the code.
_REQUEST_VAULT = {"operation", "code"}
_REQUEST_KUBERNETES = {"verb", "resource", "code"}


def _histogram(name: str, labels: set[str]) -> dict[str, set[str]]:
    return {
        f"{name}_bucket": labels | {"le"},
        f"{name}_sum": set(labels),
        f"{name}_count": set(labels),
    }


METRICS: dict[str, set[str]] = {
    "vault_auth_kubernetes_build_info": {"version", "revision", "rustc"},
    "vault_auth_kubernetes_reconciliations_total": {"result"},
    **_histogram("vault_auth_kubernetes_reconcile_duration_seconds", set()),
    "vault_auth_kubernetes_vault_requests_total": _REQUEST_VAULT,
    **_histogram("vault_auth_kubernetes_vault_request_duration_seconds", _REQUEST_VAULT),
    "vault_auth_kubernetes_kubernetes_requests_total": _REQUEST_KUBERNETES,
    **_histogram("vault_auth_kubernetes_kubernetes_request_duration_seconds", _REQUEST_KUBERNETES),
    "vault_auth_kubernetes_managed_roles": set(),
    "vault_auth_kubernetes_managed_service_accounts": set(),
    "vault_auth_kubernetes_invalid_configmap_entries": set(),
    "vault_auth_kubernetes_last_successful_sync_timestamp_seconds": set(),
    "vault_auth_kubernetes_vault_token_ttl_seconds": set(),
    "vault_auth_kubernetes_leader": set(),
    "vault_auth_kubernetes_second_writer": set(),
    "process_resident_memory_bytes": set(),
    "process_virtual_memory_bytes": set(),
    "process_cpu_seconds_total": set(),
    "process_open_fds": set(),
    "process_max_fds": set(),
    "process_start_time_seconds": set(),
    "up": set(),
}

#: Labels Prometheus adds to every series of a target (the Prometheus Operator's, for a
#: ServiceMonitor), and the metric name itself.
TARGET_LABELS = {
    "job", "namespace", "pod", "instance", "service", "endpoint", "container", "__name__",
}  # fmt: skip

AGGREGATIONS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group",
}  # fmt: skip
FUNCTIONS = {
    "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "time",
    "absent", "absent_over_time", "max_over_time", "min_over_time", "avg_over_time",
    "sum_over_time", "last_over_time", "changes", "resets", "clamp_min", "clamp_max", "abs",
    "round", "ceil", "floor", "vector", "scalar", "timestamp", "label_replace", "label_join",
    "sort", "sort_desc",
    "label_values",  # Grafana's, in template variable queries
} | AGGREGATIONS  # fmt: skip
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = GROUPING | {"and", "or", "unless", "bool", "offset", "inf", "nan"}

TOKEN = re.compile(
    r"""\s+|(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)"""
    r"""|(?P<variable>\$\{[^}]*\}|\$\w+)"""
    r"""|(?P<number>[0-9][0-9a-zA-Z.+_]*|\.[0-9]+)"""
    r"""|(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)"""
    r"""|(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){}\[\],=<>@])"""
)
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


@dataclass
class Uses:
    """What one expression uses."""

    metrics: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def tokens(expr: str) -> list[tuple[str, str]]:
    """(kind, text) pairs; an unknown character is an `error` token."""
    result = []
    position = 0
    while position < len(expr):
        match = TOKEN.match(expr, position)
        if not match or match.end() == position:
            result.append(("error", expr[position]))
            position += 1
            continue
        position = match.end()
        if match.lastgroup:
            result.append((match.lastgroup, match.group(match.lastgroup)))
    return result


def uses(expr: str) -> Uses:
    """Metric names, label names and functions of a PromQL expression."""
    found = Uses()
    toks = tokens(expr)
    i = 0
    depth_brace = 0
    depth_bracket = 0
    while i < len(toks):
        kind, text = toks[i]
        following = toks[i + 1][1] if i + 1 < len(toks) else ""
        if kind == "error":
            found.errors.append(f"unexpected {text!r}")
        elif kind == "op" and text == "{":
            depth_brace += 1
        elif kind == "op" and text == "}":
            depth_brace -= 1
        elif kind == "op" and text == "[":
            depth_bracket += 1
        elif kind == "op" and text == "]":
            depth_bracket -= 1
        elif kind == "ident" and depth_bracket:
            pass  # a duration such as [5m] is a number token; nothing else belongs here
        elif kind == "ident" and depth_brace:
            if following in ("=", "!=", "=~", "!~"):
                found.labels.add(text)
            else:
                found.errors.append(f"{text!r} in a label matcher is not followed by an operator")
        elif kind == "ident" and text in GROUPING:
            if following == "(":
                i += 2
                while i < len(toks) and toks[i][1] != ")":
                    if toks[i][0] == "ident":
                        found.labels.add(toks[i][1])
                    i += 1
        elif kind == "ident" and text.lower() in KEYWORDS:
            pass
        elif kind == "ident" and (following == "(" or text in AGGREGATIONS):
            if text in FUNCTIONS:
                found.functions.add(text)
            else:
                found.errors.append(f"unknown function {text}()")
        elif kind == "ident":
            found.metrics.add(text)
        i += 1
    if depth_brace or depth_bracket:
        found.errors.append("unbalanced braces or brackets")
    return found


def legend_labels(legend: str) -> set[str]:
    """Labels a Grafana legend format names, e.g. `{{operation}} {{code}}`."""
    return set(LEGEND_LABEL.findall(legend or ""))


def problems(expr: str, legend: str = "") -> list[str]:
    """What is wrong with an expression: unknown metrics, labels none of its metrics carry."""
    found = uses(expr)
    result = list(found.errors)
    for metric in sorted(found.metrics - set(METRICS)):
        result.append(f"metric {metric} is not one the controller exports")
    known = TARGET_LABELS.union(*(METRICS.get(m, set()) for m in found.metrics))
    for label in sorted((found.labels | legend_labels(legend)) - known):
        result.append(f"label {label} is not on {', '.join(sorted(found.metrics)) or 'any metric'}")
    if not found.metrics:
        result.append("uses no metric")
    return result
