"""Checks of the controller's Deployment: hardening, probes, environment, CA volume."""

from __future__ import annotations

from typing import Any

from checks import Scope
from manifests import Manifest, Obj

CA_DIR = "/etc/vault-auth-kubernetes/vault-ca"
APPROLE_DIR = "/etc/vault-auth-kubernetes/approle"
UID = 65532

#: The container securityContext the chart ships with.
HARDENED_CONTAINER = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "runAsGroup": UID,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
HARDENED_POD = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "runAsGroup": UID,
    "fsGroup": UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
DEFAULT_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
DEFAULT_IMAGE = "ghcr.io/vault-auth-kubernetes/vault-auth-kubernetes:0.1.0"

#: The probes the chart ships: liveness on /livez, readiness on /readyz, on the named admin port;
#: no startup probe unless asked for.
DEFAULT_PROBES: dict[str, dict[str, Any] | None] = {
    "livenessProbe": {
        "httpGet": {"path": "/livez", "port": "admin"},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    },
    "readinessProbe": {
        "httpGet": {"path": "/readyz", "port": "admin"},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 2,
    },
    "startupProbe": None,
}


def secret_ref(secret: str, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": secret, "key": key}}


def field_ref(path: str) -> dict[str, Any]:
    return {"fieldRef": {"fieldPath": path}}


def expected_env(
    *,
    host: str,
    mount: str,
    secret: str,
    leader: bool = False,
    port: int = 8080,
    **overrides: str | None,
) -> dict[str, Any]:
    """Env of the container: name -> value (str) or valueFrom (dict); an override of None removes
    the variable."""
    env: dict[str, Any] = {
        "VAK_VAULT_HOST": host,
        "VAK_VAULT_MOUNT": mount,
        "VAK_VAULT_APPROLE_MOUNT": "approle",
        "VAK_VAULT_SKIP_VERIFY": "false",
        # The AppRole Secret is mounted as files (see check_volumes), read at every login.
        "VAK_VAULT_ROLE_ID_FILE": f"{APPROLE_DIR}/role-id",
        "VAK_VAULT_SECRET_ID_FILE": f"{APPROLE_DIR}/secret-id",
        "VAK_NAMESPACE": field_ref("metadata.namespace"),
        "POD_NAME": field_ref("metadata.name"),
        "VAK_RESYNC_INTERVAL": "60s",
        "VAK_LOG_LEVEL": "info",
        "VAK_LOG_FORMAT": "text",
        "VAK_ADMIN_PORT": str(port),
        "VAK_LEADER_ELECTION": "true" if leader else "false",
    }
    if leader:
        env["VAK_LEADER_LEASE_DURATION"] = "15s"
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def pod_spec(deployment: Obj) -> dict[str, Any]:
    return deployment.body["spec"]["template"]["spec"]


def container(deployment: Obj) -> dict[str, Any]:
    containers = pod_spec(deployment)["containers"]
    if len(containers) != 1:
        raise LookupError(f"expected one container, got {len(containers)}")
    return containers[0]


def env_of(c: dict[str, Any], scope: Scope) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for var in c.get("env", []):
        scope.check(var["name"] not in env, f"env var {var['name']} is set twice")
        env[var["name"]] = var["valueFrom"] if "valueFrom" in var else var.get("value")
    return env


def check_hardening(deployment: Obj, scope: Scope, *, sa: str) -> None:
    """Non-root fixed UID, read-only root, no privilege, seccomp, token mounted for the API."""
    spec = pod_spec(deployment)
    c = container(deployment)
    scope.equal(spec.get("securityContext"), HARDENED_POD, "pod securityContext")
    scope.equal(c.get("securityContext"), HARDENED_CONTAINER, "container securityContext")
    scope.equal(spec.get("serviceAccountName"), sa, "serviceAccountName")
    scope.equal(spec.get("automountServiceAccountToken"), True, "pod automountServiceAccountToken")
    scope.equal(spec.get("enableServiceLinks"), False, "enableServiceLinks")
    scope.check(not spec.get("hostNetwork") and not spec.get("hostPID"), "pod uses host namespaces")
    for mount in c.get("volumeMounts", []):
        scope.equal(mount.get("readOnly"), True, f"volumeMount {mount.get('name')} readOnly")


def check_probes(
    deployment: Obj, scope: Scope, *, port: int, probes: dict[str, dict[str, Any] | None]
) -> None:
    """The probes as expected (by default liveness on /livez and readiness on /readyz, on the
    named admin port) and the admin port itself."""
    c = container(deployment)
    scope.equal(
        c.get("ports"), [{"name": "admin", "containerPort": port, "protocol": "TCP"}], "ports"
    )
    for probe, expected in {**DEFAULT_PROBES, **probes}.items():
        if expected is None:
            scope.check(probe not in c, f"unexpected {probe}: {c.get(probe)}")
        else:
            scope.equal(c.get(probe), expected, probe)


def approle_volume(secret: str) -> dict[str, Any]:
    """The AppRole Secret as files: role-id and secret-id."""
    items = [
        {"key": "VAK_VAULT_ROLE_ID", "path": "role-id"},
        {"key": "VAK_VAULT_SECRET_ID", "path": "secret-id"},
    ]
    return {"name": "approle", "secret": {"secretName": secret, "items": items}}


APPROLE_MOUNT = {"name": "approle", "mountPath": APPROLE_DIR, "readOnly": True}


def check_ca(
    deployment: Obj,
    scope: Scope,
    *,
    source: dict[str, Any] | None,
    key: str,
    secret: str = "vault-auth-kubernetes",
) -> None:
    """The AppRole Secret is mounted read-only as files; the CA bundle, when set, is mounted
    read-only from its Secret or ConfigMap, at VAK_VAULT_CA_CERT."""
    spec = pod_spec(deployment)
    c = container(deployment)
    env = env_of(c, scope)
    if source is None:
        scope.equal(spec.get("volumes"), [approle_volume(secret)], "volumes")
        scope.equal(c.get("volumeMounts"), [APPROLE_MOUNT], "volumeMounts")
        scope.check(
            "VAK_VAULT_CA_CERT" not in env, "no CA configured, but VAK_VAULT_CA_CERT is set"
        )
        return
    scope.equal(
        spec.get("volumes"), [approle_volume(secret), {"name": "vault-ca", **source}], "volumes"
    )
    scope.equal(
        c.get("volumeMounts"),
        [APPROLE_MOUNT, {"name": "vault-ca", "mountPath": CA_DIR, "readOnly": True}],
        "volumeMounts",
    )
    scope.equal(env.get("VAK_VAULT_CA_CERT"), f"{CA_DIR}/{key}", "VAK_VAULT_CA_CERT")


def check_deployment(
    manifest: Manifest,
    scope: Scope,
    *,
    sa: str,
    env: dict[str, Any],
    replicas: int = 1,
    leader: bool = False,
    port: int = 8080,
    image: str = DEFAULT_IMAGE,
    resources: dict[str, Any] | None = None,
    probes: dict[str, dict[str, Any] | None] | None = None,
    args: list[str] | None = None,
) -> None:
    """Everything every scenario expects of the Deployment, with the scenario's specifics."""
    deployment = manifest.deployment()
    spec = deployment.body["spec"]
    c = container(deployment)
    scope.equal(spec.get("replicas"), replicas, "replicas")
    strategy = spec.get("strategy", {}).get("type")
    # Two pods may only overlap when the Lease keeps all but one from writing.
    scope.equal(strategy, "RollingUpdate" if leader else "Recreate", "Deployment strategy")
    selector = spec["selector"]["matchLabels"]
    pod_labels = spec["template"]["metadata"]["labels"]
    scope.check(
        all(pod_labels.get(k) == v for k, v in selector.items()),
        f"pod labels {pod_labels} do not match the selector {selector}",
    )
    scope.equal(c.get("image"), image, "image")
    scope.equal(c.get("args"), args, "args")
    scope.equal(c.get("resources"), resources or DEFAULT_RESOURCES, "resources")
    scope.equal(env_of(c, scope), env, "env")
    check_hardening(deployment, scope, sa=sa)
    check_probes(deployment, scope, port=port, probes=probes or {})
