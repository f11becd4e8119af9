{{/*
Name of the chart in labels (app.kubernetes.io/name) and in fullname: the chart's name, or
nameOverride.
*/}}
{{- define "vak.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Name of the chart's own objects: fullnameOverride; else, with nameOverride, the usual
`<release>-<name>` (just the release name when it already contains the name); else the release
name, as the original chart used.
The controller creates and deletes objects with fixed names of its own; the chart's names must never
be one of them, or the controller would manage (and possibly delete) the chart's RBAC.
*/}}
{{- define "vak.fullname" -}}
{{- $name := .Release.Name -}}
{{- if .Values.fullnameOverride -}}
{{- $name = .Values.fullnameOverride -}}
{{- else if .Values.nameOverride -}}
{{- $short := include "vak.name" . -}}
{{- $name = ternary .Release.Name (printf "%s-%s" .Release.Name $short) (contains $short .Release.Name) -}}
{{- end -}}
{{- $name = $name | trunc 63 | trimSuffix "-" -}}
{{- if has $name (list "vault-auth-token-reviewer" "vault-auth-token-reviewer-namespaces" "token-reviewer") -}}
{{- fail (printf "the name %q is reserved for objects the controller manages itself: choose another release name or set fullnameOverride" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* Namespace of the controller, its ConfigMap vault-auth-roles and the reviewer's token Secret. */}}
{{- define "vak.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{/* Labels selecting the controller's pods. Never commonLabels: a selector cannot change. */}}
{{- define "vak.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vak.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels of every object of the chart, as YAML: the chart's own, then `extra` (the object's own
labels, e.g. serviceMonitor.labels), then commonLabels; where keys collide the earlier wins, so
neither can change the selector or managed-by labels. app.kubernetes.io/managed-by is Helm's: the
controller selects what it manages with app.kubernetes.io/managed-by=vault-auth-kubernetes, which
the chart never sets.
Call: include "vak.labelsWith" (dict "ctx" . "extra" .Values.x.labels)
*/}}
{{- define "vak.labelsWith" -}}
{{- $ctx := .ctx -}}
{{- $own := include "vak.selectorLabels" $ctx | fromYaml -}}
{{- $_ := set $own "helm.sh/chart" (printf "%s-%s" $ctx.Chart.Name $ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-") -}}
{{- $_ = set $own "app.kubernetes.io/version" $ctx.Chart.AppVersion -}}
{{- $_ = set $own "app.kubernetes.io/component" "controller" -}}
{{- $_ = set $own "app.kubernetes.io/managed-by" $ctx.Release.Service -}}
{{- toYaml (merge $own (deepCopy (.extra | default dict)) (deepCopy ($ctx.Values.commonLabels | default dict))) -}}
{{- end -}}

{{/* Labels of every object of the chart (see vak.labelsWith). */}}
{{- define "vak.labels" -}}
{{- include "vak.labelsWith" (dict "ctx" . "extra" dict) -}}
{{- end -}}

{{/*
The container image: a string is used as it is (the original chart's `image: repository:tag`); an
object gives repository@digest when digest is set, else repository:tag, the tag defaulting to the
chart's appVersion.
*/}}
{{- define "vak.image" -}}
{{- $image := .Values.image -}}
{{- if kindIs "string" $image -}}
{{- required "image is required: the full image reference, e.g. ghcr.io/vault-auth-kubernetes/vault-auth-kubernetes:0.1.0" $image -}}
{{- else -}}
{{- $repository := required "image.repository is required, e.g. ghcr.io/vault-auth-kubernetes/vault-auth-kubernetes" $image.repository -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion $image.tag | toString) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A probe of the controller container, as YAML: the chart's default (`default`, YAML) with the
user's `override` merged over it key by key. An override naming a handler (httpGet, tcpSocket,
exec, grpc) replaces the default handler instead of being merged into it.
Call: include "vak.probe" (dict "default" (include "vak.readinessProbe" .) "override" .Values.readinessProbe)
*/}}
{{- define "vak.probe" -}}
{{- $probe := .default | fromYaml -}}
{{- $override := deepCopy (.override | default dict) -}}
{{- range list "httpGet" "tcpSocket" "exec" "grpc" -}}
{{- if hasKey $override . -}}
{{- $_ := unset $probe "httpGet" -}}
{{- end -}}
{{- end -}}
{{- toYaml (mergeOverwrite $probe $override) -}}
{{- end -}}

{{/* Default liveness probe: /livez answers as long as the process runs. */}}
{{- define "vak.livenessProbe" -}}
httpGet:
  path: /livez
  port: admin
periodSeconds: 10
timeoutSeconds: 3
failureThreshold: 3
{{- end -}}

{{/* Default readiness probe: /readyz fails, naming the cause, while the controller cannot work. */}}
{{- define "vak.readinessProbe" -}}
httpGet:
  path: /readyz
  port: admin
periodSeconds: 5
timeoutSeconds: 3
failureThreshold: 2
{{- end -}}

{{/* Default startup probe, rendered only when startupProbe is set (to what is merged over it). */}}
{{- define "vak.startupProbe" -}}
httpGet:
  path: /livez
  port: admin
periodSeconds: 5
timeoutSeconds: 3
failureThreshold: 30
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

{{/* Name of the metrics Service: also the `job` label Prometheus gives the controller's series. */}}
{{- define "vak.metricsServiceName" -}}
{{- printf "%s-metrics" (include "vak.fullname" .) -}}
{{- end -}}

{{/* Where the Vault CA bundle is mounted in the container. */}}
{{- define "vak.vaultCADir" -}}
/etc/vault-auth-kubernetes/vault-ca
{{- end -}}

{{/* Where the AppRole Secret is mounted as files. */}}
{{- define "vak.approleDir" -}}
/etc/vault-auth-kubernetes/approle
{{- end -}}
