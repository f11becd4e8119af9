{{/*
Name of the chart's own objects: the release name (as the original chart used), or fullnameOverride.
The controller creates and deletes objects with fixed names of its own; the chart's names must never
be one of them, or the controller would manage (and possibly delete) the chart's RBAC.
*/}}
{{- define "vak.fullname" -}}
{{- $name := default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- if has $name (list "vault-auth-token-reviewer" "vault-auth-token-reviewer-namespaces" "token-reviewer") -}}
{{- fail (printf "the name %q is reserved for objects the controller manages itself: choose another release name or set fullnameOverride" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* Namespace of the controller, its ConfigMap vault-auth-roles and the reviewer's token Secret. */}}
{{- define "vak.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{/* Labels selecting the controller's pods. */}}
{{- define "vak.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels of every object of the chart. app.kubernetes.io/managed-by is Helm's: the controller selects
what it manages with app.kubernetes.io/managed-by=vault-auth-kubernetes, which the chart never sets.
*/}}
{{- define "vak.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "vak.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* ServiceAccount the controller runs as. */}}
{{- define "vak.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vak.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Secret with VAK_VAULT_ROLE_ID and VAK_VAULT_SECRET_ID: named after the release by default. */}}
{{- define "vak.vaultSecretName" -}}
{{- default .Release.Name .Values.vaultSecret.name -}}
{{- end -}}

{{/* "true" when leader election is on: asked for, or needed because several replicas run. */}}
{{- define "vak.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) -}}
true
{{- else -}}
false
{{- end -}}
{{- end -}}

{{/* "true" when the metrics Service is rendered. */}}
{{- define "vak.metricsService" -}}
{{- if or .Values.metrics.service.enabled .Values.serviceMonitor.enabled -}}
true
{{- end -}}
{{- end -}}

{{/* Where the Vault CA bundle is mounted in the container. */}}
{{- define "vak.vaultCADir" -}}
/etc/vault-auth-kubernetes/vault-ca
{{- end -}}

{{/* Where the AppRole Secret is mounted as files. */}}
{{- define "vak.approleDir" -}}
/etc/vault-auth-kubernetes/approle
{{- end -}}
