"""Broken copies of the chart that the checks must reject: proof that the checks can fail.

Each mutation changes one thing a check guards (a verb, a name restriction, a hardening setting, a
probe, an env var...). A mutation whose text is no longer in the chart is itself reported as
missed, so the list cannot silently go stale when the chart changes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from checks import Failures

#: (name, template file, text in it, replacement)
MUTATIONS = [
    (
        "ClusterRole grants an extra verb",
        "templates/clusterrole.yaml",
        'verbs: ["get", "list", "watch"]',
        'verbs: ["get", "list", "watch", "update"]',
    ),
    (
        "ClusterRole lacks serviceaccounts delete",
        "templates/clusterrole.yaml",
        '"create", "patch", "delete"]',
        '"create", "patch"]',
    ),
    (
        "bind no longer restricted by name",
        "templates/clusterrole.yaml",
        '    resourceNames: ["system:auth-delegator", "vault-auth-token-reviewer-namespaces"]\n',
        "",
    ),
    (
        "create restricted by name (never allowed)",
        "templates/role.yaml",
        'resources: ["secrets"]\n    verbs: ["create"]',
        'resources: ["secrets"]\n    resourceNames: ["token-reviewer-token"]\n'
        '    verbs: ["create"]',
    ),
    (
        "Role grants tokenreviews",
        "templates/role.yaml",
        '  - apiGroups: [""]\n    resources: ["events"]',
        '  - apiGroups: ["authentication.k8s.io"]\n    resources: ["tokenreviews"]\n'
        '    verbs: ["create"]\n  - apiGroups: [""]\n    resources: ["events"]',
    ),
    (
        "Lease rules missing",
        "templates/role.yaml",
        'resourceNames: ["vault-auth-kubernetes"]\n    verbs: ["get", "patch"]',
        'resourceNames: ["vault-auth-kubernetes"]\n    verbs: ["get"]',
    ),
    (
        "RoleBinding subject in the release namespace",
        "templates/role.yaml",
        '    namespace: {{ include "vak.namespace" . }}\n{{- end }}',
        "    namespace: {{ .Release.Namespace }}\n{{- end }}",
    ),
    (
        "root filesystem writable",
        "values.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
    ),
    ("capabilities kept", "values.yaml", 'drop: ["ALL"]', 'drop: ["NET_RAW"]'),
    (
        "runs as root",
        "values.yaml",
        "  runAsUser: 65532\n  runAsGroup: 65532\n  readOnly",
        "  runAsUser: 0\n  runAsGroup: 65532\n  readOnly",
    ),
    ("no readiness probe path", "templates/_helpers.tpl", "path: /readyz", "path: /livez"),
    (
        "CA mounted writable",
        "templates/deployment.yaml",
        'mountPath: {{ include "vak.vaultCADir" . }}\n              readOnly: true',
        'mountPath: {{ include "vak.vaultCADir" . }}\n              readOnly: false',
    ),
    (
        "AppRole Secret mounted writable",
        "templates/deployment.yaml",
        'mountPath: {{ include "vak.approleDir" . }}\n              readOnly: true',
        'mountPath: {{ include "vak.approleDir" . }}\n              readOnly: false',
    ),
    (
        "AppRole secret-id not read from its file",
        "templates/deployment.yaml",
        "- name: VAK_VAULT_SECRET_ID_FILE",
        "- name: VAK_VAULT_SECRET_ID_FILE_",
    ),
    (
        "policy guard-rail not passed",
        "templates/deployment.yaml",
        "- name: VAK_ALLOWED_POLICIES",
        "- name: VAK_ALLOWED_POLICIES_",
    ),
    (
        "leader election not passed",
        "templates/deployment.yaml",
        "value: {{ $leader | quote }}",
        'value: "false"',
    ),
    ("POD_NAME missing", "templates/deployment.yaml", "- name: POD_NAME", "- name: POD_NAME_"),
    (
        "ServiceMonitor port name wrong",
        "templates/servicemonitor.yaml",
        "- port: metrics",
        "- port: admin",
    ),
    (
        "roles rendered as YAML, not JSON",
        "templates/configmap-roles.yaml",
        "toPrettyJson $role",
        "toYaml $role",
    ),
    (
        "PDB with one replica",
        "templates/poddisruptionbudget.yaml",
        "gt (int .Values.replicas) 1",
        "ge (int .Values.replicas) 1",
    ),
    (
        "Recreate with leader election",
        "templates/deployment.yaml",
        "type: RollingUpdate",
        "type: Recreate",
    ),
    ("value left out of the README", "README.md", "| `extraEnv` |", "| extraEnv |"),
    (
        "removed API version (lint)",
        "templates/poddisruptionbudget.yaml",
        "policy/v1\n",
        "policy/v1beta1\n",
    ),
    # --- image --------------------------------------------------------------------------------
    ("digest ignored", "templates/_helpers.tpl", "{{- if $image.digest -}}", "{{- if false -}}"),
    (
        "tag not defaulting to appVersion",
        "templates/_helpers.tpl",
        "(default .Chart.AppVersion $image.tag | toString)",
        '(default "latest" $image.tag | toString)',
    ),
    (
        "string image no longer accepted",
        "values.schema.json",
        '{\n          "type": "string",\n          "minLength": 1\n        },\n        {\n          "type": "object"',
        '{\n          "type": "null"\n        },\n        {\n          "type": "object"',
    ),
    # --- names and labels ---------------------------------------------------------------------
    (
        "nameOverride ignored in names",
        "templates/_helpers.tpl",
        "{{- else if .Values.nameOverride -}}",
        "{{- else if false -}}",
    ),
    (
        "commonLabels dropped",
        "templates/_helpers.tpl",
        "(deepCopy ($ctx.Values.commonLabels | default dict))",
        "dict",
    ),
    (
        "commonLabels override the chart's labels",
        "templates/_helpers.tpl",
        "toYaml (merge $own",
        "toYaml (mergeOverwrite $own",
    ),
    (
        "commonLabels in the selector",
        "templates/_helpers.tpl",
        "app.kubernetes.io/instance: {{ .Release.Name }}\n",
        "app.kubernetes.io/instance: {{ .Release.Name }}\n"
        "{{- with .Values.commonLabels }}\n{{ toYaml . }}\n{{- end }}\n",
    ),
    # --- pod options --------------------------------------------------------------------------
    (
        "extraArgs dropped",
        "templates/deployment.yaml",
        ".Values.extraArgs }}",
        ".Values.extraArg }}",
    ),
    ("envFrom dropped", "templates/deployment.yaml", ".Values.envFrom }}", ".Values.envfrom }}"),
    (
        "extraVolumeMounts dropped",
        "templates/deployment.yaml",
        ".Values.extraVolumeMounts }}",
        ".Values.extraVolumeMount }}",
    ),
    (
        "topology constraint without the pods' selector",
        "templates/deployment.yaml",
        '{{- if not (hasKey $constraint "labelSelector") }}',
        "{{- if false }}",
    ),
    (
        "probe handler merged into the default's",
        "templates/_helpers.tpl",
        '{{- $_ := unset $probe "httpGet" -}}',
        "{{- $_ := 0 -}}",
    ),
    (
        "probe overrides ignored",
        "templates/_helpers.tpl",
        "toYaml (mergeOverwrite $probe $override)",
        "toYaml $probe",
    ),
    # --- monitoring ---------------------------------------------------------------------------
    (
        "ServiceMonitor selects its own namespace",
        "templates/servicemonitor.yaml",
        '      - {{ include "vak.namespace" . }}',
        '      - {{ default (include "vak.namespace" .) .Values.serviceMonitor.namespace }}',
    ),
    (
        "relabelings dropped",
        "templates/servicemonitor.yaml",
        ".Values.serviceMonitor.relabelings }}",
        ".Values.serviceMonitor.relabeling }}",
    ),
    (
        "alerts on the wrong job",
        "templates/prometheusrule.yaml",
        '{{- $svc := include "vak.metricsServiceName" . }}',
        '{{- $svc := include "vak.fullname" . }}',
    ),
    (
        "sync threshold ignored",
        "templates/prometheusrule.yaml",
        "{{- $seconds := mul (int .thresholdMinutes) 60 }}",
        "{{- $seconds := 600 }}",
    ),
    (
        "alert on a metric the controller does not export",
        "templates/prometheusrule.yaml",
        "vault_auth_kubernetes_second_writer{",
        "vault_auth_kubernetes_second_writers{",
    ),
    (
        "Prometheus template syntax eaten by Helm",
        "templates/prometheusrule.yaml",
        "{{`{{ $value }}`}} entries",
        "{{ `$value` }} entries",
    ),
    (
        "dashboard ConfigMap without the sidecar label",
        "templates/grafana-dashboard.yaml",
        '(dict "grafana_dashboard" "1")',
        '(dict "grafana_dashboard" "0")',
    ),
    (
        "dashboard not valid JSON",
        "dashboards/vault-auth-kubernetes.json",
        '"schemaVersion": 39,',
        '"schemaVersion": 39,,',
    ),
    (
        "dashboard uses a metric the controller does not export",
        "dashboards/vault-auth-kubernetes.json",
        "max(vault_auth_kubernetes_managed_service_accounts{",
        "max(vault_auth_kubernetes_managed_serviceaccounts{",
    ),
    (
        "dashboard groups by a label the metric lacks",
        "dashboards/vault-auth-kubernetes.json",
        "sum by (operation, code) (rate(vault_auth_kubernetes_vault_requests_total",
        "sum by (method, code) (rate(vault_auth_kubernetes_vault_requests_total",
    ),
    # --- extraObjects and GitOps --------------------------------------------------------------
    (
        "extraObjects not rendered through tpl",
        "templates/extra-objects.yaml",
        "{{ tpl (toYaml .) $ }}",
        "{{ toYaml . }}",
    ),
    (
        "a Helm hook",
        "templates/serviceaccount.yaml",
        "  {{- with .Values.serviceAccount.annotations }}",
        "  annotations:\n    helm.sh/hook: pre-install\n"
        "  {{- with .Values.serviceAccount.annotations }}",
    ),
    (
        "lookup in a template",
        "templates/service.yaml",
        "  type: ClusterIP\n",
        '  type: {{ (lookup "v1" "Service" "" "").kind | default "ClusterIP" }}\n',
    ),
    (
        "output differs between renders",
        "templates/deployment.yaml",
        "  revisionHistoryLimit: 3\n",
        # randInt: not in test_chart.CLUSTER_OR_TIME, so the render-twice check must catch it.
        "  revisionHistoryLimit: 3\n  # {{ randInt 0 1000000000 }}\n",
    ),
    ("new value left out of the README", "README.md", "| `extraArgs` |", "| extraArgs |"),
]


def run(chart: Path, check: Callable[[Path, Path], Failures]) -> list[str]:
    """Names of the mutations `check` did not catch (0 failures) or that no longer apply.

    Prints, for each caught mutation, the first failure that caught it.
    """
    missed = []
    with tempfile.TemporaryDirectory(prefix="vak-chart-mutations-") as tmp:
        for index, (name, file, old, new) in enumerate(MUTATIONS):
            copy = Path(tmp) / f"m{index}" / chart.name
            shutil.copytree(chart, copy)
            target = copy / file
            text = target.read_text()
            if text.count(old) != 1:
                missed.append(
                    f"{name} (its text occurs {text.count(old)} times in {file}, not once)"
                )
                continue
            target.write_text(text.replace(old, new))
            with stderr_silenced():
                failures = check(copy, Path(tmp) / f"out{index}")
            if failures.count == 0:
                missed.append(name)
            else:
                print(f"caught {name}: {' '.join(failures.messages[0].split())[:150]}")
    return missed


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Helm's Go side logs template `fail`/`required` messages of lint runs straight to fd 2: noise
    for a chart broken on purpose. Python's own errors are raised after fd 2 is restored."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
