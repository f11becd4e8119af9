"""The value sets the chart is rendered with, and what each must produce or how it must fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import helm_python as helm

import rbac
from checks import Scope
from manifests import Manifest, render
from pod import check_ca, check_deployment, expected_env, pod_spec

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

    def check(self, manifest: Manifest, scope: Scope) -> None:
        try:
            scope.equal(manifest.kinds(), sorted(self.kinds), "rendered kinds")
            check_common(manifest, scope, self)
            self.specific(manifest, scope)
        except (LookupError, KeyError, TypeError) as err:
            scope.fail(f"rendered objects are not shaped as expected: {err!r}")


def check_common(manifest: Manifest, scope: Scope, scenario: Scenario) -> None:
    """Namespaces, labels and names every scenario must get right."""
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for obj in manifest.objects:
        if obj.kind in cluster_scoped:
            scope.check(obj.namespace is None, f"{obj} is cluster-scoped but has a namespace")
        else:
            scope.equal(obj.namespace, scenario.controller_namespace, f"{obj} namespace")
        scope.equal(
            obj.labels.get("app.kubernetes.io/managed-by"), "Helm", f"{obj} managed-by label"
        )
        scope.equal(
            obj.labels.get("app.kubernetes.io/instance"), scenario.release, f"{obj} instance label"
        )
        scope.check(obj.name not in CONTROLLER_OWNED, f"{obj} uses a name the controller manages")
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
    ErrorCase(
        "PDB blocks all",
        {"replicas": 2, "podDisruptionBudget": {"minAvailable": 2}},
        "must be lower than replicas",
    ),
    ErrorCase("reserved name", {}, "is reserved", release="vault-auth-token-reviewer"),
    ErrorCase(
        "no SA name", {"serviceAccount": {"create": False}}, "serviceAccount.name is required"
    ),
]
