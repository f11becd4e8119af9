"""Checks of the Grafana dashboard the chart ships (dashboards/vault-auth-kubernetes.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql
from checks import Scope

DASHBOARD = "dashboards/vault-auth-kubernetes.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

#: What the dashboard must show: each of these metrics in some panel's expression.
SHOWN = {
    "vault_auth_kubernetes_last_successful_sync_timestamp_seconds",
    "vault_auth_kubernetes_reconciliations_total",
    "vault_auth_kubernetes_reconcile_duration_seconds_bucket",
    "vault_auth_kubernetes_vault_requests_total",
    "vault_auth_kubernetes_vault_request_duration_seconds_bucket",
    "vault_auth_kubernetes_kubernetes_requests_total",
    "vault_auth_kubernetes_kubernetes_request_duration_seconds_bucket",
    "vault_auth_kubernetes_managed_roles",
    "vault_auth_kubernetes_managed_service_accounts",
    "vault_auth_kubernetes_invalid_configmap_entries",
    "vault_auth_kubernetes_vault_token_ttl_seconds",
    "vault_auth_kubernetes_leader",
    "vault_auth_kubernetes_second_writer",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "vault_auth_kubernetes_build_info",
}
#: Labels the dashboard must break series down by (grouping or legend), per metric.
BROKEN_DOWN = {
    "vault_auth_kubernetes_reconciliations_total": {"result"},
    "vault_auth_kubernetes_vault_requests_total": {"operation", "code"},
    "vault_auth_kubernetes_vault_request_duration_seconds_bucket": {"operation", "le"},
    "vault_auth_kubernetes_kubernetes_requests_total": {"verb", "resource", "code"},
    "vault_auth_kubernetes_kubernetes_request_duration_seconds_bucket": {"verb", "resource", "le"},
    "vault_auth_kubernetes_build_info": {"version", "revision"},
}


def load(chart_dir: Path, scope: Scope) -> dict[str, Any] | None:
    path = chart_dir / DASHBOARD
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        scope.fail(f"{DASHBOARD} is not valid JSON: {err}")
        return None


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    result = []
    for panel in dashboard.get("panels", []):
        result.append(panel)
        result.extend(panel.get("panels", []))
    return result


def check(chart_dir: Path, scope: Scope) -> int:
    """The dashboard's structure and every expression in it; returns the number of expressions."""
    dashboard = load(chart_dir, scope)
    if dashboard is None:
        return 0
    scope.equal(dashboard.get("schemaVersion"), 39, "schemaVersion")
    scope.check(bool(dashboard.get("uid")) and bool(dashboard.get("title")), "uid and title set")
    scope.check("__inputs" not in dashboard, "uses __inputs (import-only), not the variable")
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    source = variables.get("datasource", {})
    scope.equal(
        (source.get("type"), source.get("query")),
        ("datasource", "prometheus"),
        "the `datasource` variable (a Prometheus data source)",
    )
    namespace = variables.get("namespace", {})
    scope.equal(namespace.get("type"), "query", "the `namespace` variable's type")
    scope.equal(namespace.get("datasource"), DATASOURCE, "the `namespace` variable's datasource")
    query = namespace.get("query")
    query = query.get("query") if isinstance(query, dict) else query
    scope.equal(
        query,
        "label_values(vault_auth_kubernetes_build_info, namespace)",
        "the `namespace` variable's query",
    )

    ids = []
    shown: dict[str, set[str]] = {}
    expressions = 0
    for panel in panels(dashboard):
        title = panel.get("title", f"panel {panel.get('id')}")
        ids.append(panel.get("id"))
        grid = panel.get("gridPos", {})
        scope.check(
            all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y"))
            and grid["x"] + grid["w"] <= 24,
            f"panel {title!r} has no valid gridPos: {grid}",
        )
        if panel.get("type") == "row":
            continue
        scope.equal(panel.get("datasource"), DATASOURCE, f"panel {title!r} datasource")
        targets = panel.get("targets") or []
        scope.check(bool(targets), f"panel {title!r} has no query")
        for target in targets:
            expressions += 1
            expr = target.get("expr", "")
            scope.equal(target.get("datasource"), DATASOURCE, f"panel {title!r} query datasource")
            legend = target.get("legendFormat", "")
            for problem in promql.problems(expr, legend):
                scope.fail(f"panel {title!r}: {problem}: {expr}")
            scope.check(
                "$namespace" in expr, f"panel {title!r} ignores the namespace variable: {expr}"
            )
            found = promql.uses(expr)
            for metric in found.metrics:
                shown.setdefault(metric, set()).update(
                    found.labels | promql.legend_labels(legend)
                )
    scope.check(len(ids) == len(set(ids)), f"panel ids are not unique: {ids}")
    for first, second in overlapping(panels(dashboard)):
        scope.fail(f"panels {first!r} and {second!r} overlap")
    for metric in sorted(SHOWN - set(shown)):
        scope.fail(f"no panel shows {metric}")
    for metric, labels in sorted(BROKEN_DOWN.items()):
        missing = labels - shown.get(metric, set())
        scope.check(not missing, f"no panel breaks {metric} down by {sorted(missing)}")
    return expressions


def overlapping(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of panels whose grid rectangles overlap (Grafana would push one down)."""
    boxes = []
    for panel in items:
        g = panel.get("gridPos") or {}
        if all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")):
            boxes.append((panel.get("title", ""), g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"]))
    result = []
    for i, (a, ax1, ay1, ax2, ay2) in enumerate(boxes):
        for b, bx1, by1, bx2, by2 in boxes[i + 1 :]:
            if ax1 < bx2 and bx1 < ax2 and ay1 < by2 and by1 < ay2:
                result.append((a, b))
    return result
