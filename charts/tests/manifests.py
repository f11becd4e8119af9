"""Rendering the chart and parsing what Helm produced into objects.

YAML is parsed with Helm's own parser (helm_python.values_from_yaml, i.e. sigs.k8s.io/yaml as
Kubernetes reads manifests), one document at a time, so no PyYAML is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import helm_python as helm

#: Helm's install order (pkg/release/util/kind_sorter.go), for the kinds this chart renders and a
#: few neighbours; kinds not listed go last, as with Helm.
INSTALL_ORDER = [
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "Pod",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "Job",
]

DOCUMENT_SEPARATOR = re.compile(r"^---\s*$", re.MULTILINE)


@dataclass
class Obj:
    """One rendered Kubernetes object."""

    template: str
    source: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        return self.body.get("metadata") or {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str | None:
        return self.metadata.get("namespace")

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.get("labels") or {}

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class Manifest:
    """Everything one render produced: the objects and NOTES.txt."""

    def __init__(self, objects: list[Obj], notes: str) -> None:
        self.objects = objects
        self.notes = notes

    def kinds(self) -> list[str]:
        return sorted(o.kind for o in self.objects)

    def all(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.kind == kind]

    def one(self, kind: str) -> Obj:
        """The only object of `kind`; LookupError (a failed check) when there is none or several."""
        found = self.all(kind)
        if len(found) != 1:
            raise LookupError(f"expected one {kind}, rendered {len(found)}")
        return found[0]

    def deployment(self) -> Obj:
        return self.one("Deployment")

    def install_order(self) -> list[Obj]:
        def rank(obj: Obj) -> tuple[int, str]:
            position = (
                INSTALL_ORDER.index(obj.kind) if obj.kind in INSTALL_ORDER else len(INSTALL_ORDER)
            )
            return position, obj.name

        return sorted(self.objects, key=rank)


def parse(rendered: dict[str, str]) -> Manifest:
    """Splits Helm's template -> text mapping into objects; empty documents are dropped."""
    objects = []
    notes = ""
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for document in DOCUMENT_SEPARATOR.split(text):
            body = helm.values_from_yaml(document)
            if body:
                objects.append(Obj(template=template, source=document.strip("\n"), body=body))
    return Manifest(objects, notes)


def render(chart: helm.Chart, values: dict, release: str, namespace: str) -> Manifest:
    """Renders as `helm install --namespace NAMESPACE RELEASE` would; raises helm.HelmError."""
    rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
    return parse(rendered)
