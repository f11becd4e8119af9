"""The value sets the chart is rendered with, and what each must produce or how it must fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm

import promql
import rbac
from checks import Scope
from dashboard import DASHBOARD
from manifests import Manifest, Obj, render
from pod import check_ca, check_deployment, container, expected_env, pod_spec

CHART = Path(__file__).resolve().parents[1] / "vault-auth-kubernetes"

HOST = "https://vault.example.com:8200"
MOUNT = "staging/backend"
#: What every install must set (the chart has no sensible default for them).
REQUIRED = {"vaultHost": HOST, "vaultMount": MOUNT}

#: Names the controller creates and deletes itself; the chart must never own them.
CONTROLLER_OWNED = {
    "vault-auth-token-reviewer",
    "vault-auth-token-reviewer-namespaces",
    "token-reviewer",
    "token-reviewer-token",
}
CORE_OBJECTS = [
    "ClusterRole",
    "ClusterRoleBinding",
    "Deployment",
    "Role",
    "RoleBinding",
    "ServiceAccount",
]


@dataclass
class Scenario:
    """A value set to render, and the checks specific to it."""

    name: str
    values: dict[str, Any]
    specific: Callable[[Manifest, Scope], None]
    kinds: list[str]
    release: str = "vault-auth-kubernetes"
    namespace: str = "vault-auth"
    controller_namespace: str = "vault-auth"
    #: Objects expected outside the controller's namespace: "Kind/name" -> namespace (None: none).
    namespaces: dict[str, str | None] = field(default_factory=dict)

    def check(self, manifest: Manifest, scope: Scope) -> None:
        try:
            scope.equal(manifest.kinds(), sorted(self.kinds), "rendered kinds")
            check_common(manifest, scope, self)
            self.specific(manifest, scope)
        except (LookupError, KeyError, TypeError) as err:
            scope.fail(f"rendered objects are not shaped as expected: {err!r}")


#: Labels the chart sets itself; commonLabels and per-object labels never replace them.
CHART_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
}


def is_extra(obj: Obj) -> bool:
    """An object of extraObjects: rendered as the user wrote it."""
    return obj.template.endswith("/extra-objects.yaml")


def selectors(obj: Obj) -> list[dict[str, str]]:
    """The label selectors of an object that pick the controller's pods or Service."""
    spec = obj.body.get("spec") or {}
    if obj.kind == "Service":
        return [spec.get("selector") or {}]
    if obj.kind in ("Deployment", "PodDisruptionBudget", "ServiceMonitor"):
        return [(spec.get("selector") or {}).get("matchLabels") or {}]
    return []


def check_common(manifest: Manifest, scope: Scope, scenario: Scenario) -> None:
    """Namespaces, labels and names every scenario must get right, and what GitOps tools need: no
    Helm hooks (Argo CD and Flux treat them differently from Helm, or not at all)."""
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    common = scenario.values.get("commonLabels") or {}
    for obj in manifest.objects:
        key = f"{obj.kind}/{obj.name}"
        if key in scenario.namespaces:
            scope.equal(obj.namespace, scenario.namespaces[key], f"{obj} namespace")
        elif obj.kind in cluster_scoped:
            scope.check(obj.namespace is None, f"{obj} is cluster-scoped but has a namespace")
        else:
            scope.equal(obj.namespace, scenario.controller_namespace, f"{obj} namespace")
        annotations = obj.metadata.get("annotations") or {}
        scope.check(
            not any(a.startswith("helm.sh/hook") for a in annotations),
            f"{obj} is a Helm hook: {annotations}",
        )
        scope.check(obj.name not in CONTROLLER_OWNED, f"{obj} uses a name the controller manages")
        if is_extra(obj):
            continue
        scope.equal(
            obj.labels.get("app.kubernetes.io/managed-by"), "Helm", f"{obj} managed-by label"
        )
        scope.equal(
            obj.labels.get("app.kubernetes.io/instance"), scenario.release, f"{obj} instance label"
        )
        for label, value in common.items():
            if label not in CHART_LABELS:
                scope.equal(obj.labels.get(label), value, f"{obj} commonLabels {label}")
        for selector in selectors(obj):
            scope.check(
                not set(selector) & (set(common) - CHART_LABELS),
                f"{obj} selects by commonLabels: {selector}",
            )
    scope.check(
        scenario.values["vaultHost"] in manifest.notes, "NOTES.txt does not name the Vault address"
    )


def service_account(manifest: Manifest) -> str:
    return manifest.one("ServiceAccount").name


# --- scenarios -----------------------------------------------------------------------------------


def default_install(m: Manifest, s: Scope) -> None:
    sa = m.one("ServiceAccount")
    s.equal(sa.name, "vault-auth-kubernetes", "ServiceAccount name (release name, as the original)")
    s.equal(sa.body.get("automountServiceAccountToken"), False, "ServiceAccount automount")
    env = expected_env(host=HOST, mount=MOUNT, secret="vault-auth-kubernetes")
    check_deployment(m, s, sa=sa.name, env=env)
    check_ca(m.deployment(), s, source=None, key="")
    s.check("affinity" not in pod_spec(m.deployment()), "a single replica needs no affinity")
    rbac.check(m, s, namespace="vault-auth", sa=sa.name, leader=False)
    s.check("vault-auth-kubernetes" in m.notes and "VAK_VAULT_SECRET_ID" in m.notes, "NOTES.txt")


def vault_ca_secret(m: Manifest, s: Scope) -> None:
    sa = service_account(m)
    s.equal(sa, "vak", "ServiceAccount named after the release")
    env = expected_env(
        host=HOST,
        mount=MOUNT,
        secret="vault-approle",
        VAK_VAULT_KUBE_HOST="https://kubernetes.example.com:6443",
        VAK_VAULT_NAMESPACE="team-a/eu",
        VAK_VAULT_APPROLE_MOUNT="approle/controllers",
        VAK_VAULT_CA_CERT="/etc/vault-auth-kubernetes/vault-ca/ca.pem",
    )
    check_deployment(m, s, sa=sa, env=env, image="registry.example.com/vak@sha256:" + "ab" * 32)
    source = {"secret": {"secretName": "vault-ca", "items": [{"key": "ca.pem", "path": "ca.pem"}]}}
    check_ca(m.deployment(), s, source=source, key="ca.pem", secret="vault-approle")
    rbac.check(m, s, namespace="vault-auth", sa=sa, leader=False)


def vault_ca_configmap(m: Manifest, s: Scope) -> None:
    sa = service_account(m)
    env = expected_env(
        host=HOST,
        mount="prod",
        secret="vault-auth-kubernetes",
        VAK_VAULT_CA_CERT="/etc/vault-auth-kubernetes/vault-ca/ca.crt",
    )
    check_deployment(m, s, sa=sa, env=env)
    source = {"configMap": {"name": "vault-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
    check_ca(m.deployment(), s, source=source, key="ca.crt")


def namespace_override(m: Manifest, s: Scope) -> None:
    sa = service_account(m)
    env = expected_env(host=HOST, mount=MOUNT, secret="vault-auth-kubernetes")
    check_deployment(m, s, sa=sa, env=env)
    # Bindings must name the account where it really lives, not the release namespace.
    rbac.check(m, s, namespace="vault-auth", sa=sa, leader=False)


def high_availability(m: Manifest, s: Scope) -> None:
    sa = service_account(m)
    env = expected_env(host=HOST, mount=MOUNT, secret="vault-auth-kubernetes", leader=True)
    check_deployment(m, s, sa=sa, env=env, replicas=3, leader=True)
    rbac.check(m, s, namespace="vault-auth", sa=sa, leader=True)
    pdb = m.one("PodDisruptionBudget")
    s.equal(pdb.body["spec"].get("minAvailable"), 1, "PodDisruptionBudget minAvailable")
    pod_labels = m.deployment().body["spec"]["template"]["metadata"]["labels"]
    selector = pdb.body["spec"]["selector"]["matchLabels"]
    s.check(
        all(pod_labels.get(k) == v for k, v in selector.items()),
        f"PodDisruptionBudget selector {selector} does not select the pods {pod_labels}",
    )
    anti = pod_spec(m.deployment()).get("affinity", {}).get("podAntiAffinity", {})
    terms = anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    s.check(
        len(terms) == 1 and terms[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname",
        f"replicas should prefer different nodes, got affinity {anti}",
    )


def leader_single(m: Manifest, s: Scope) -> None:
    sa = service_account(m)
    env = expected_env(
        host=HOST,
        mount=MOUNT,
        secret="vault-auth-kubernetes",
        leader=True,
        VAK_LEADER_LEASE_DURATION="30s",
    )
    check_deployment(m, s, sa=sa, env=env, replicas=1, leader=True)
    rbac.check(m, s, namespace="vault-auth", sa=sa, leader=True)


def service_monitor(m: Manifest, s: Scope) -> None:
    sa = service_account(m)
    env = expected_env(host=HOST, mount=MOUNT, secret="vault-auth-kubernetes", port=9090)
    check_deployment(m, s, sa=sa, env=env, port=9090)
    svc = m.one("Service")
    monitor = m.one("ServiceMonitor")
    s.equal(monitor.api_version, "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
    s.equal(
        svc.body["spec"].get("ports"),
        [{"name": "metrics", "port": 9090, "targetPort": "admin", "protocol": "TCP"}],
        "Service ports",
    )
    s.equal(
        svc.body["spec"].get("publishNotReadyAddresses"), True, "Service publishNotReadyAddresses"
    )
    pod_labels = m.deployment().body["spec"]["template"]["metadata"]["labels"]
    s.check(
        all(pod_labels.get(k) == v for k, v in svc.body["spec"]["selector"].items()),
        "the metrics Service does not select the controller's pods",
    )
    spec = monitor.body["spec"]
    s.check(
        all(svc.labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()),
        f"ServiceMonitor selector {spec['selector']} does not select the Service {svc.labels}",
    )
    s.equal(
        spec.get("namespaceSelector"), {"matchNames": ["vault-auth"]}, "ServiceMonitor namespaces"
    )
    s.equal(
        spec.get("endpoints"),
        [{"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}],
        "ServiceMonitor endpoints",
    )
    s.equal(monitor.labels.get("release"), "prometheus", "ServiceMonitor extra label")


#: Roles from the original README, plus one using durations and a namespace selector.
ROLES = {
    "default": {
        "bound_service_account_names": ["vault-agent-injector", "default"],
        "bound_service_account_namespaces": ["kube-system", "default"],
        "token_policies": ["test"],
    },
    "test": {
        "bound_service_account_names": ["vault-agent-injector"],
        "bound_service_account_namespaces": ["kube-system"],
        "token_policies": ["test", "default"],
    },
    "team-a.apps": {
        "bound_service_account_names": ["app-*"],
        "bound_service_account_namespace_selector": '{"matchLabels":{"team":"a"}}',
        "token_policies": ["team-a"],
        "token_ttl": 3600,
        "token_max_ttl": "4h",
        "audience": "vault",
    },
}


def roles_values(m: Manifest, s: Scope) -> None:
    cm = m.one("ConfigMap")
    s.equal(cm.name, "vault-auth-roles", "roles ConfigMap name")
    data = cm.body.get("data") or {}
    s.equal(sorted(data), sorted(ROLES), "roles ConfigMap keys")
    for key, text in data.items():
        try:
            s.equal(json.loads(text), ROLES.get(key), f"role {key} JSON")
        except json.JSONDecodeError as err:
            s.fail(f"role {key} is not valid JSON ({err}): {text!r}")
    s.check("default, team-a.apps, test" in m.notes, "NOTES.txt lists the roles")


def json_logs(m: Manifest, s: Scope) -> None:
    env = expected_env(
        host="http://openbao.openbao.svc:8200",
        mount=MOUNT,
        secret="vault-auth-kubernetes",
        VAK_LOG_FORMAT="json",
        VAK_LOG_LEVEL="vault_auth_kubernetes=debug,info",
        VAK_RESYNC_INTERVAL="5m",
        VAK_VAULT_SKIP_VERIFY="true",
    )
    check_deployment(m, s, sa=service_account(m), env=env)


PLACEMENT = {
    "podAnnotations": {"example.com/team": "platform"},
    "podLabels": {"example.com/tier": "control"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "infra", "operator": "Exists"}]}
                ]
            }
        }
    },
    "priorityClassName": "system-cluster-critical",
    "imagePullSecrets": [{"name": "regcred"}],
    "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
}


def pod_placement(m: Manifest, s: Scope) -> None:
    env = expected_env(host=HOST, mount=MOUNT, secret="vault-auth-kubernetes", RUST_BACKTRACE="1")
    check_deployment(m, s, sa=service_account(m), env=env, resources=PLACEMENT["resources"])
    template = m.deployment().body["spec"]["template"]
    spec = template["spec"]
    s.equal(template["metadata"].get("annotations"), PLACEMENT["podAnnotations"], "pod annotations")
    s.equal(template["metadata"]["labels"].get("example.com/tier"), "control", "pod label")
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"):
        s.equal(spec.get(key), PLACEMENT[key], key)


def own_rbac_metrics_service(m: Manifest, s: Scope) -> None:
    """RBAC and ServiceAccount managed outside the chart; a plain metrics Service."""
    env = expected_env(host=HOST, mount=MOUNT, secret="vault-auth-kubernetes")
    check_deployment(m, s, sa="vak-controller", env=env)
    svc = m.one("Service")
    s.equal(svc.name, "vault-auth-kubernetes-metrics", "metrics Service name")
    s.equal(
        svc.metadata.get("annotations"), {"prometheus.io/scrape": "true"}, "Service annotations"
    )
    s.equal(svc.body["spec"]["ports"][0].get("port"), 8080, "metrics Service port")


def guard_rails(m: Manifest, s: Scope) -> None:
    """The policy guard-rail's patterns and the empty-ConfigMap opt-in reach the controller."""
    env = expected_env(
        host=HOST,
        mount=MOUNT,
        secret="vault-auth-kubernetes",
        VAK_ALLOWED_POLICIES="team-*,default",
        VAK_DENIED_POLICIES="admin*",
        VAK_ALLOW_EMPTY_CONFIGMAP="true",
    )
    check_deployment(m, s, sa=service_account(m), env=env)


def app_version() -> str:
    """The chart's appVersion: the default image tag."""
    return str(helm.values_from_yaml((CHART / "Chart.yaml").read_text())["appVersion"])


def image_is(expected: Callable[[], str]) -> Callable[[Manifest, Scope], None]:
    """The Deployment runs `expected()` and is otherwise the default install."""

    def specific(m: Manifest, s: Scope) -> None:
        env = expected_env(host=HOST, mount=MOUNT, secret="vault-auth-kubernetes")
        check_deployment(m, s, sa=service_account(m), env=env, image=expected())

    return specific


def names_follow(fullname: str, name_label: str, approle_secret: str):
    """Every object of the chart is named after `fullname`; pods carry app.kubernetes.io/name
    `name_label`; selectors still pick them; the AppRole Secret keeps the release's name."""

    def specific(m: Manifest, s: Scope) -> None:
        expected = {
            "Service": f"{fullname}-metrics",
            "ConfigMap": f"{fullname}-dashboard",
        }
        for obj in m.objects:
            s.equal(obj.name, expected.get(obj.kind, fullname), f"{obj.kind} name")
            s.equal(obj.labels.get("app.kubernetes.io/name"), name_label, f"{obj} name label")
        env = expected_env(host=HOST, mount=MOUNT, secret=approle_secret, leader=True)
        check_deployment(m, s, sa=fullname, env=env, replicas=2, leader=True)
        rbac.check(m, s, namespace="vault-auth", sa=fullname, leader=True)
        pod_labels = m.deployment().body["spec"]["template"]["metadata"]["labels"]
        for obj in m.objects:
            for selector in selectors(obj):
                target = m.one("Service").labels if obj.kind == "ServiceMonitor" else pod_labels
                s.check(
                    all(target.get(k) == v for k, v in selector.items()),
                    f"{obj} selector {selector} does not select {target}",
                )
        rule = m.all("PrometheusRule")
        if rule:
            down = alerts(rule[0])["VaultAuthKubernetesDown"]
            s.check(f'job="{fullname}-metrics"' in down["expr"], f"alerts use another job: {down}")

    return specific


COMMON_LABELS = {
    "example.com/team": "platform",
    "cost-center": "42",
    # Must not replace the chart's own label (check_common checks the instance label).
    "app.kubernetes.io/instance": "someone-else",
}


def common_labels(m: Manifest, s: Scope) -> None:
    """check_common checks every object; here the pods, and which labels win on them."""
    template = m.deployment().body["spec"]["template"]["metadata"]["labels"]
    s.equal(template.get("example.com/team"), "platform", "commonLabels on the pods")
    s.equal(template.get("cost-center"), "pods", "podLabels win over commonLabels on the pods")
    s.equal(
        template.get("app.kubernetes.io/instance"), "vault-auth-kubernetes", "pod instance label"
    )
    monitor = m.one("ServiceMonitor")
    s.equal(monitor.labels.get("release"), "prometheus", "ServiceMonitor's own labels")
    s.check(
        all(not is_extra(o) or "cost-center" not in o.labels for o in m.objects),
        "commonLabels added to extraObjects (rendered as given)",
    )


POD_EXTRAS = {
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
        },
        {
            "maxSkew": 2,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "other"}},
        },
    ],
    "extraArgs": ["--log-format=json", "--resync-interval=2m"],
    "envFrom": [
        {"secretRef": {"name": "vak-extra"}},
        {"configMapRef": {"name": "vak-env"}, "prefix": "VAK_"},
    ],
    "extraVolumes": [{"name": "corp-ca", "configMap": {"name": "corp-ca"}}],
    "extraVolumeMounts": [{"name": "corp-ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
    "livenessProbe": {"periodSeconds": 20, "failureThreshold": 6},
    "readinessProbe": {"tcpSocket": {"port": "admin"}, "timeoutSeconds": 5},
    "startupProbe": {"failureThreshold": 60},
}


def pod_extras(m: Manifest, s: Scope) -> None:
    probes = {
        # Merged key by key over the defaults.
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": "admin"},
            "periodSeconds": 20,
            "timeoutSeconds": 3,
            "failureThreshold": 6,
        },
        # A handler of its own replaces the default's (no httpGet left beside tcpSocket).
        "readinessProbe": {
            "tcpSocket": {"port": "admin"},
            "periodSeconds": 5,
            "timeoutSeconds": 5,
            "failureThreshold": 2,
        },
        "startupProbe": {
            "httpGet": {"path": "/livez", "port": "admin"},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 60,
        },
    }
    env = expected_env(host=HOST, mount=MOUNT, secret="vault-auth-kubernetes")
    check_deployment(
        m, s, sa=service_account(m), env=env, probes=probes, args=POD_EXTRAS["extraArgs"]
    )
    deployment = m.deployment()
    spec = pod_spec(deployment)
    c = container(deployment)
    s.equal(c.get("envFrom"), POD_EXTRAS["envFrom"], "envFrom")
    s.equal(
        [v["name"] for v in spec.get("volumes", [])], ["approle", "corp-ca"], "volumes (names)"
    )
    s.equal(spec["volumes"][-1], POD_EXTRAS["extraVolumes"][0], "extra volume")
    s.equal(c["volumeMounts"][-1], POD_EXTRAS["extraVolumeMounts"][0], "extra volume mount")
    selector = deployment.body["spec"]["selector"]["matchLabels"]
    zone, host = POD_EXTRAS["topologySpreadConstraints"]
    s.equal(
        spec.get("topologySpreadConstraints"),
        [{**zone, "labelSelector": {"matchLabels": selector}}, host],
        "topologySpreadConstraints (the pods' selector filled in where none is given)",
    )


def alerts(rule: Obj) -> dict[str, dict[str, Any]]:
    """The PrometheusRule's alerts by name."""
    result = {}
    for group in rule.body["spec"]["groups"]:
        for item in group["rules"]:
            result[item["alert"]] = item
    return result


def expected_alerts(
    *,
    job: str = "vault-auth-kubernetes-metrics",
    ns: str = "vault-auth",
    sync_seconds: int = 600,
    invalid: int = 0,
    ttl: int = 300,
) -> dict[str, str]:
    """Each alert's expression."""
    sel = f'job="{job}", namespace="{ns}"'
    pod = "on(namespace, pod, instance)"
    return {
        "VaultAuthKubernetesDown": f"up{{{sel}}} == 0 or absent(up{{{sel}}})",
        "VaultAuthKubernetesSyncFailing": (
            f"(time() - vault_auth_kubernetes_last_successful_sync_timestamp_seconds{{{sel}}}"
            f" > {sync_seconds})\n"
            f"and {pod} (vault_auth_kubernetes_leader{{{sel}}} == 1)\n"
            f"and {pod} (time() - process_start_time_seconds{{{sel}}} > {sync_seconds})"
        ),
        "VaultAuthKubernetesInvalidEntries": (
            f"vault_auth_kubernetes_invalid_configmap_entries{{{sel}}} > {invalid}"
        ),
        "VaultAuthKubernetesTokenTTLLow": (
            f"(vault_auth_kubernetes_vault_token_ttl_seconds{{{sel}}} < {ttl})\n"
            f"and {pod} (vault_auth_kubernetes_leader{{{sel}}} == 1)"
        ),
        "VaultAuthKubernetesSecondWriter": f"vault_auth_kubernetes_second_writer{{{sel}}} == 1",
    }


#: What each alert's description must tell the reader to look at.
ALERT_HINTS = {
    "VaultAuthKubernetesDown": ["kubectl -n vault-auth get pods"],
    "VaultAuthKubernetesSyncFailing": [
        "kubectl describe configmap vault-auth-roles -n vault-auth",
        "/readyz",
        "{{ $labels.pod }}",
    ],
    "VaultAuthKubernetesInvalidEntries": [
        "kubectl describe configmap vault-auth-roles -n vault-auth",
        "{{ $value }}",
    ],
    "VaultAuthKubernetesTokenTTLLow": ["/readyz", "{{ $labels.pod }}"],
    "VaultAuthKubernetesSecondWriter": [
        "kubectl describe configmap vault-auth-roles -n vault-auth",
        "get lease vault-auth-kubernetes",
    ],
}


def check_alerts(
    rule: Obj,
    s: Scope,
    exprs: dict[str, str],
    durations: dict[str, str],
    severities: dict[str, str],
) -> None:
    """The alerts are exactly `exprs`, each with its `for`, severity and readable annotations, and
    every expression uses only metrics and labels the controller exports."""
    found = alerts(rule)
    s.equal(sorted(found), sorted(exprs), "alerts")
    for name, item in found.items():
        expr = item.get("expr", "")
        s.equal(expr, exprs.get(name), f"{name} expr")
        for problem in promql.problems(expr):
            s.fail(f"{name}: {problem}")
        s.equal(item.get("for"), durations.get(name), f"{name} for")
        s.equal(item.get("labels"), {"severity": severities.get(name)}, f"{name} labels")
        annotations = item.get("annotations") or {}
        s.equal(sorted(annotations), ["description", "summary"], f"{name} annotations")
        # Folded (>-) text: one line, whatever the template's wrapping.
        description = " ".join(str(annotations.get("description", "")).split())
        for hint in ALERT_HINTS.get(name, []):
            s.check(hint in description, f"{name} description does not mention {hint!r}")


DEFAULT_FOR = {
    "VaultAuthKubernetesDown": "5m",
    "VaultAuthKubernetesSyncFailing": "5m",
    "VaultAuthKubernetesInvalidEntries": "15m",
    "VaultAuthKubernetesTokenTTLLow": "5m",
    "VaultAuthKubernetesSecondWriter": "5m",
}
DEFAULT_SEVERITY = {
    "VaultAuthKubernetesDown": "critical",
    "VaultAuthKubernetesSyncFailing": "critical",
    "VaultAuthKubernetesInvalidEntries": "warning",
    "VaultAuthKubernetesTokenTTLLow": "warning",
    "VaultAuthKubernetesSecondWriter": "critical",
}


def prometheus_rule(m: Manifest, s: Scope) -> None:
    s.check("VaultAuthKubernetesDown fires" not in m.notes, "NOTES.txt warns of a missing job")
    rule = m.one("PrometheusRule")
    s.equal(rule.api_version, "monitoring.coreos.com/v1", "PrometheusRule apiVersion")
    check_alerts(rule, s, expected_alerts(), DEFAULT_FOR, DEFAULT_SEVERITY)
    svc = m.one("Service")
    s.equal(svc.name, "vault-auth-kubernetes-metrics", "the Service the alerts' job names")


def prometheus_rule_alone(m: Manifest, s: Scope) -> None:
    """Without the ServiceMonitor nothing scrapes under the alerts' job: NOTES.txt says so."""
    s.check(
        'job="vault-auth-kubernetes-metrics"' in m.notes and "serviceMonitor.enabled" in m.notes,
        "NOTES.txt does not say the alerts need the ServiceMonitor's job",
    )


MONITORING = {
    "serviceMonitor": {
        "enabled": True,
        "namespace": "monitoring",
        "relabelings": [
            {"action": "replace", "targetLabel": "cluster", "replacement": "eu-1"},
        ],
        "metricRelabelings": [
            {"action": "drop", "sourceLabels": ["__name__"], "regex": "process_virtual_.*"},
        ],
    },
    "prometheusRule": {
        "enabled": True,
        "namespace": "monitoring",
        "labels": {"release": "prometheus"},
        "alerts": {
            "down": {"for": "3m"},
            "syncFailing": {"thresholdMinutes": 20, "for": "10m", "severity": "page"},
            "invalidEntries": {"enabled": False},
            "tokenTTLLow": {"thresholdSeconds": 120, "severity": "info"},
        },
    },
    "grafanaDashboard": {
        "enabled": True,
        "namespace": "grafana",
        "labels": {"example.com/team": "platform"},
        "annotations": {"grafana_folder": "Vault"},
    },
}


def monitoring(m: Manifest, s: Scope) -> None:
    """ServiceMonitor and PrometheusRule in the monitoring namespace, the dashboard in Grafana's."""
    monitor = m.one("ServiceMonitor")
    spec = monitor.body["spec"]
    s.equal(
        spec.get("namespaceSelector"),
        {"matchNames": ["vault-auth"]},
        "ServiceMonitor (in monitoring) still selects the controller's namespace",
    )
    s.equal(
        spec.get("endpoints"),
        [
            {
                "port": "metrics",
                "path": "/metrics",
                "interval": "30s",
                "relabelings": MONITORING["serviceMonitor"]["relabelings"],
                "metricRelabelings": MONITORING["serviceMonitor"]["metricRelabelings"],
            }
        ],
        "ServiceMonitor endpoints",
    )
    rule = m.one("PrometheusRule")
    s.equal(rule.labels.get("release"), "prometheus", "PrometheusRule extra label")
    exprs = expected_alerts(sync_seconds=1200, ttl=120)
    del exprs["VaultAuthKubernetesInvalidEntries"]
    check_alerts(
        rule,
        s,
        exprs,
        {**DEFAULT_FOR, "VaultAuthKubernetesDown": "3m", "VaultAuthKubernetesSyncFailing": "10m"},
        {
            **DEFAULT_SEVERITY,
            "VaultAuthKubernetesSyncFailing": "page",
            "VaultAuthKubernetesTokenTTLLow": "info",
        },
    )
    summary = alerts(rule)["VaultAuthKubernetesSyncFailing"]["annotations"]["summary"]
    s.check("20 minutes" in summary, f"SyncFailing summary does not say 20 minutes: {summary}")
    dashboard = m.one("ConfigMap")
    s.equal(dashboard.name, "vault-auth-kubernetes-dashboard", "dashboard ConfigMap name")
    s.equal(dashboard.labels.get("grafana_dashboard"), "1", "dashboard sidecar label")
    s.equal(dashboard.labels.get("example.com/team"), "platform", "dashboard extra label")
    s.equal(
        dashboard.metadata.get("annotations"), {"grafana_folder": "Vault"}, "dashboard annotations"
    )
    data = dashboard.body.get("data") or {}
    s.equal(sorted(data), ["vault-auth-kubernetes.json"], "dashboard ConfigMap keys")
    try:
        shipped = json.loads((CHART / DASHBOARD).read_text())
        s.equal(
            json.loads(data.get("vault-auth-kubernetes.json", "")),
            shipped,
            "dashboard ConfigMap content (the chart's JSON file)",
        )
    except json.JSONDecodeError as err:
        s.fail(f"dashboard ConfigMap holds no valid JSON: {err}")


EXTERNAL_SECRET = {
    "apiVersion": "external-secrets.io/v1beta1",
    "kind": "ExternalSecret",
    "metadata": {
        "name": '{{ include "vak.vaultSecretName" . }}',
        "namespace": '{{ include "vak.namespace" . }}',
    },
    "spec": {
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"},
        "target": {"name": '{{ include "vak.vaultSecretName" . }}'},
        "data": [
            {
                "secretKey": "VAK_VAULT_ROLE_ID",
                "remoteRef": {"key": "vak/approle", "property": "role-id"},
            },
            {
                "secretKey": "VAK_VAULT_SECRET_ID",
                "remoteRef": {"key": "vak/approle", "property": "secret-id"},
            },
        ],
    },
}
NETWORK_POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "vak.fullname" . }}-egress
  namespace: {{ .Release.Namespace }}
spec:
  podSelector:
    matchLabels:
      {{- include "vak.selectorLabels" . | nindent 6 }}
  policyTypes: ["Egress"]
  egress:
    - {}
"""


def extra_objects(m: Manifest, s: Scope) -> None:
    secret = m.one("ExternalSecret")
    s.equal(secret.name, "vault-auth-kubernetes", "ExternalSecret name (through tpl)")
    s.equal(
        secret.body["spec"]["target"], {"name": "vault-auth-kubernetes"}, "ExternalSecret target"
    )
    s.equal(secret.body["spec"]["data"], EXTERNAL_SECRET["spec"]["data"], "ExternalSecret data")
    policy = m.one("NetworkPolicy")
    s.equal(policy.name, "vault-auth-kubernetes-egress", "NetworkPolicy name (string through tpl)")
    pod_labels = m.deployment().body["spec"]["template"]["metadata"]["labels"]
    selector = policy.body["spec"]["podSelector"]["matchLabels"]
    s.check(
        bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items()),
        f"NetworkPolicy selector {selector} does not select the pods",
    )
    s.equal(policy.body["spec"]["policyTypes"], ["Egress"], "NetworkPolicy policyTypes")


def scenario(name: str, values: dict, specific, extra_kinds=(), **kwargs) -> Scenario:
    return Scenario(
        name, {**REQUIRED, **values}, specific, CORE_OBJECTS + list(extra_kinds), **kwargs
    )


SCENARIOS = [
    scenario("default", {}, default_install),
    scenario(
        "vault-ca-secret",
        {
            "image": "registry.example.com/vak@sha256:" + "ab" * 32,
            "vaultCA": {"secretName": "vault-ca", "key": "ca.pem"},
            "vaultKubeHost": "https://kubernetes.example.com:6443",
            "vaultNamespace": "team-a/eu",
            "vaultApproleMount": "approle/controllers",
            "vaultSecret": {"name": "vault-approle"},
        },
        vault_ca_secret,
        release="vak",
    ),
    scenario(
        "vault-ca-configmap",
        {"vaultMount": "prod", "vaultCA": {"configMapName": "vault-ca"}},
        vault_ca_configmap,
    ),
    scenario(
        "namespace-override",
        {"namespaceOverride": "vault-auth"},
        namespace_override,
        namespace="default",
    ),
    scenario("ha-replicas-3", {"replicas": 3}, high_availability, ["PodDisruptionBudget"]),
    scenario(
        "leader-election-single",
        {"leaderElection": {"enabled": True, "leaseDuration": "30s"}},
        leader_single,
    ),
    scenario(
        "service-monitor",
        {
            "adminPort": 9090,
            "serviceMonitor": {
                "enabled": True,
                "interval": "15s",
                "scrapeTimeout": "10s",
                "labels": {"release": "prometheus"},
            },
        },
        service_monitor,
        ["Service", "ServiceMonitor"],
    ),
    scenario("roles-values", {"roles": ROLES}, roles_values, ["ConfigMap"]),
    scenario(
        "json-logs",
        {
            "vaultHost": "http://openbao.openbao.svc:8200",
            "vaultSkipVerify": True,
            "logFormat": "json",
            "logLevel": "vault_auth_kubernetes=debug,info",
            "resyncInterval": "5m",
        },
        json_logs,
    ),
    scenario("pod-placement", PLACEMENT, pod_placement),
    scenario(
        "guard-rails",
        {
            "policyGuard": {"allowed": ["team-*", "default"], "denied": ["admin*"]},
            "allowEmptyConfigMap": True,
        },
        guard_rails,
    ),
    Scenario(
        "own-rbac-metrics-service",
        {
            **REQUIRED,
            "rbac": {"create": False},
            "serviceAccount": {"create": False, "name": "vak-controller"},
            "metrics": {
                "service": {"enabled": True, "annotations": {"prometheus.io/scrape": "true"}}
            },
        },
        own_rbac_metrics_service,
        ["Deployment", "Service"],
    ),
    scenario(
        "image-digest",
        {
            "image": {
                "repository": "registry.example.com/vak",
                "tag": "9.9.9",
                "digest": "sha256:" + "cd" * 32,
            }
        },
        image_is(lambda: "registry.example.com/vak@sha256:" + "cd" * 32),
    ),
    scenario(
        "image-tag",
        {"image": {"repository": "registry.example.com:5000/team/vak", "tag": "1.2.3"}},
        image_is(lambda: "registry.example.com:5000/team/vak:1.2.3"),
    ),
    scenario(
        "image-app-version",
        {"image": {"repository": "registry.example.com/vak"}},
        image_is(lambda: f"registry.example.com/vak:{app_version()}"),
    ),
    scenario(
        "image-string-tag",
        {"image": "registry.example.com/vak:0.0.9"},
        image_is(lambda: "registry.example.com/vak:0.0.9"),
    ),
    scenario(
        "name-override",
        {
            "nameOverride": "secrets-auth",
            "replicas": 2,
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "grafanaDashboard": {"enabled": True},
        },
        names_follow("vak-secrets-auth", "secrets-auth", "vak"),
        ["PodDisruptionBudget", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"],
        release="vak",
    ),
    scenario(
        "name-override-in-release",
        {"nameOverride": "vault-auth", "replicas": 2},
        names_follow("vault-auth-kubernetes", "vault-auth", "vault-auth-kubernetes"),
        ["PodDisruptionBudget"],
    ),
    scenario(
        "fullname-over-name",
        {"nameOverride": "secrets-auth", "fullnameOverride": "vak-controller", "replicas": 2},
        names_follow("vak-controller", "secrets-auth", "vault-auth-kubernetes"),
        ["PodDisruptionBudget"],
    ),
    scenario(
        "common-labels",
        {
            "commonLabels": COMMON_LABELS,
            "podLabels": {"cost-center": "pods"},
            "replicas": 2,
            "roles": {"default": ROLES["default"]},
            "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
            "prometheusRule": {"enabled": True},
            "grafanaDashboard": {"enabled": True},
            "extraObjects": [NETWORK_POLICY],
        },
        common_labels,
        [
            "PodDisruptionBudget",
            "ConfigMap",
            "ConfigMap",
            "Service",
            "ServiceMonitor",
            "PrometheusRule",
            "NetworkPolicy",
        ],
    ),
    scenario("pod-extras", POD_EXTRAS, pod_extras),
    scenario(
        "prometheus-rule",
        {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
        prometheus_rule,
        ["Service", "ServiceMonitor", "PrometheusRule"],
    ),
    scenario(
        "prometheus-rule-alone",
        {"prometheusRule": {"enabled": True}},
        prometheus_rule_alone,
        ["PrometheusRule"],
    ),
    scenario(
        "monitoring-namespaces",
        MONITORING,
        monitoring,
        ["Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"],
        namespaces={
            "ServiceMonitor/vault-auth-kubernetes": "monitoring",
            "PrometheusRule/vault-auth-kubernetes": "monitoring",
            "ConfigMap/vault-auth-kubernetes-dashboard": "grafana",
        },
    ),
    scenario(
        "extra-objects",
        {"extraObjects": [EXTERNAL_SECRET, NETWORK_POLICY]},
        extra_objects,
        ["ExternalSecret", "NetworkPolicy"],
    ),
]


# --- values that must be refused -----------------------------------------------------------------


@dataclass
class ErrorCase:
    """Values the chart must refuse, with (part of) the message the user must see."""

    name: str
    values: dict[str, Any]
    message: str
    release: str = "vault-auth-kubernetes"
    without: list[str] = field(default_factory=list)

    def check(self, chart: helm.Chart, scope: Scope) -> None:
        values = {k: v for k, v in {**REQUIRED, **self.values}.items() if k not in self.without}
        try:
            render(chart, values, self.release, "vault-auth")
        except helm.HelmError as err:
            scope.check(
                self.message in str(err), f"expected an error with {self.message!r}, got: {err}"
            )
            return
        scope.fail(f"rendered without error; expected one with {self.message!r}")


ERROR_CASES = [
    ErrorCase("no vaultHost", {}, "vaultHost is required", without=["vaultHost"]),
    ErrorCase("no vaultMount", {}, "vaultMount is required", without=["vaultMount"]),
    ErrorCase("bad vaultMount", {"vaultMount": "/prod"}, "/vaultMount"),
    ErrorCase("two CA sources", {"vaultCA": {"secretName": "a", "configMapName": "b"}}, "not both"),
    ErrorCase(
        "typo in a key", {"replicaCount": 2}, "additional properties 'replicaCount' not allowed"
    ),
    ErrorCase("log format", {"logFormat": "xml"}, "/logFormat"),
    ErrorCase("role as string", {"roles": {"a": '{"token_policies":["x"]}'}}, "/roles/a"),
    # The role schema is generated from the controller's parameter table (tests/offline/
    # chart_schema.rs keeps it up to date): a typo in a role fails the install, naming it.
    ErrorCase(
        "typo in a role's field",
        {
            "roles": {
                "web": {
                    "bound_service_account_names": ["web"],
                    "bound_service_account_namespaces": ["team-a"],
                    "token_polices": ["web"],
                }
            }
        },
        "additional properties 'token_polices' not allowed",
    ),
    ErrorCase(
        "wrong type in a role",
        {
            "roles": {
                "web": {
                    "bound_service_account_names": ["web"],
                    "bound_service_account_namespaces": ["team-a"],
                    "token_type": "default-service",
                }
            }
        },
        "/roles/web/token_type",
    ),
    ErrorCase(
        "role binds no namespace",
        {"roles": {"web": {"bound_service_account_names": ["web"]}}},
        "/roles/web",
    ),
    ErrorCase(
        "PDB blocks all",
        {"replicas": 2, "podDisruptionBudget": {"minAvailable": 2}},
        "must be lower than replicas",
    ),
    ErrorCase("reserved name", {}, "is reserved", release="vault-auth-token-reviewer"),
    ErrorCase(
        "no SA name", {"serviceAccount": {"create": False}}, "serviceAccount.name is required"
    ),
    ErrorCase(
        "image key typo",
        {"image": {"repository": "r.example.com/vak", "tags": "1.0"}},
        "additional properties 'tags' not allowed",
    ),
    ErrorCase("bad image digest", {"image": {"digest": "sha256:abc"}}, "/image/digest"),
    ErrorCase("image tag number", {"image": {"tag": 1.2}}, "/image/tag"),
    ErrorCase("empty image", {"image": ""}, "/image"),
    ErrorCase("probe typo", {"livenessProbe": {"periodSecond": 5}}, "'periodSecond' not allowed"),
    ErrorCase(
        "snake_case relabeling",
        {"serviceMonitor": {"relabelings": [{"source_labels": ["a"]}]}},
        "'source_labels' not allowed",
    ),
    ErrorCase(
        "alert threshold typo",
        {"prometheusRule": {"alerts": {"syncFailing": {"threshold": 5}}}},
        "'threshold' not allowed",
    ),
    ErrorCase("alert bad for", {"prometheusRule": {"alerts": {"down": {"for": "5 min"}}}}, "/for"),
    ErrorCase("extraArgs not strings", {"extraArgs": ["--a", 1]}, "/extraArgs/1"),
    ErrorCase(
        "topology without key",
        {"topologySpreadConstraints": [{"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]},
        "topologyKey",
    ),
    ErrorCase("bad common label", {"commonLabels": {"team": "a b"}}, "/commonLabels/team"),
    ErrorCase(
        "extraObject without kind", {"extraObjects": [{"apiVersion": "v1"}]}, "/extraObjects/0"
    ),
    ErrorCase("bad nameOverride", {"nameOverride": "Vault_Auth"}, "/nameOverride"),
    ErrorCase(
        "reserved via nameOverride", {"nameOverride": "reviewer"}, "is reserved", release="token"
    ),
]
