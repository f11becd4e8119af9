"""The controller's Kubernetes API permissions as the chart must grant them: these, and no more.

A rule is expanded into atoms (apiGroup, resource, resourceName or None, verb) so a rendered
ClusterRole or Role can be compared with the expected set whatever way its rules are grouped.
"""

from __future__ import annotations

from typing import Any

from checks import Scope
from manifests import Manifest

Atom = tuple[str, str, str | None, str]

RBAC = "rbac.authorization.k8s.io"
REVIEWER_BINDINGS = ["vault-auth-token-reviewer", "vault-auth-token-reviewer-namespaces"]
NAMESPACE_READER = "vault-auth-token-reviewer-namespaces"


def atoms(group: str, resource: str, verbs: list[str], names: list[str] | None = None) -> set[Atom]:
    return {(group, resource, name, verb) for verb in verbs for name in (names or [None])}


#: Cluster-wide: namespaces and ServiceAccounts anywhere, the reviewer's cluster RBAC by name.
CLUSTER = (
    atoms("", "namespaces", ["get", "list", "watch"])
    | atoms("", "serviceaccounts", ["list", "watch", "create", "patch", "delete"])
    | atoms(RBAC, "clusterrolebindings", ["create"])
    | atoms(RBAC, "clusterrolebindings", ["list", "watch", "update", "delete"], REVIEWER_BINDINGS)
    | atoms(RBAC, "clusterroles", ["create"])
    | atoms(RBAC, "clusterroles", ["list", "watch", "delete"], [NAMESPACE_READER])
    | atoms(RBAC, "clusterroles", ["bind"], ["system:auth-delegator", NAMESPACE_READER])
)

#: In the controller's namespace: its ConfigMap, the reviewer's token Secret, Events.
NAMESPACED = (
    atoms("", "configmaps", ["list", "watch", "patch"], ["vault-auth-roles"])
    | atoms("", "secrets", ["create"])
    | atoms("", "secrets", ["list", "watch", "get", "patch", "delete"], ["token-reviewer-token"])
    | atoms("", "events", ["create"])
)

#: Leader election (kube-lease-manager 0.13: get, create and patch of the Lease; never update).
LEASE = atoms("coordination.k8s.io", "leases", ["create"]) | atoms(
    "coordination.k8s.io", "leases", ["get", "patch"], ["vault-auth-kubernetes"]
)

#: Single objects the controller lists and watches with a metadata.name field selector: the only
#: place where list/watch may carry resourceNames and still work.
FIELD_SELECTED = {
    ("", "configmaps", "vault-auth-roles"),
    ("", "secrets", "token-reviewer-token"),
    (RBAC, "clusterrolebindings", "vault-auth-token-reviewer"),
    (RBAC, "clusterrolebindings", "vault-auth-token-reviewer-namespaces"),
    (RBAC, "clusterroles", "vault-auth-token-reviewer-namespaces"),
}


def expand(rules: list[dict[str, Any]], scope: Scope, what: str) -> set[Atom]:
    """Atoms of `rules`; flags wildcards and restrictions Kubernetes would not honour."""
    result: set[Atom] = set()
    for rule in rules:
        groups = rule.get("apiGroups") or []
        resources = rule.get("resources") or []
        verbs = rule.get("verbs") or []
        names = rule.get("resourceNames") or [None]
        scope.check("*" not in groups + resources + verbs, f"{what} has a wildcard rule: {rule}")
        scope.check(not rule.get("nonResourceURLs"), f"{what} grants non-resource URLs: {rule}")
        for group in groups:
            for resource in resources:
                for name in names:
                    for verb in verbs:
                        result.add((group, resource, name, verb))
    for group, resource, name, verb in result:
        if name is None:
            continue
        scope.check(
            verb not in ("create", "deletecollection"),
            f"{what}: {verb} {resource} restricted to {name!r} can never be allowed "
            "(Kubernetes does not authorize create/deletecollection by name)",
        )
        if verb in ("list", "watch"):
            scope.check(
                (group, resource, name) in FIELD_SELECTED,
                f"{what}: {verb} {resource} restricted to {name!r} only works with a "
                "metadata.name field selector, which the controller does not use for it",
            )
    return result


def compare(actual: set[Atom], expected: set[Atom], scope: Scope, what: str) -> None:
    def text(atom: Atom) -> str:
        group, resource, name, verb = atom
        return f"{verb} {group or 'core'}/{resource}" + (f" {name!r}" if name else "")

    for atom in sorted(expected - actual, key=text):
        scope.fail(f"{what} lacks `{text(atom)}`, which the controller needs")
    for atom in sorted(actual - expected, key=text):
        scope.fail(f"{what} grants `{text(atom)}`, which the controller does not use")


def check(manifest: Manifest, scope: Scope, *, namespace: str, sa: str, leader: bool) -> None:
    """The ClusterRole and Role grant exactly what the controller uses, bound to its account."""
    cluster_role = manifest.one("ClusterRole")
    role = manifest.one("Role")
    compare(
        expand(cluster_role.body.get("rules", []), scope, "ClusterRole"),
        CLUSTER,
        scope,
        "ClusterRole",
    )
    # The Lease is used either way: leader election, or the second-writer claim.
    expected = NAMESPACED | LEASE
    compare(expand(role.body.get("rules", []), scope, "Role"), expected, scope, "Role")
    scope.equal(role.namespace, namespace, "Role namespace")
    scope.check("namespace" not in cluster_role.metadata, "ClusterRole must not have a namespace")

    for binding_kind, role_obj in (("ClusterRoleBinding", cluster_role), ("RoleBinding", role)):
        binding = manifest.one(binding_kind)
        scope.equal(
            binding.body.get("roleRef"),
            {"apiGroup": RBAC, "kind": role_obj.kind, "name": role_obj.name},
            f"{binding_kind} roleRef",
        )
        scope.equal(
            binding.body.get("subjects"),
            [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
            f"{binding_kind} subjects",
        )
    if role.namespace:
        scope.equal(manifest.one("RoleBinding").namespace, role.namespace, "RoleBinding namespace")
