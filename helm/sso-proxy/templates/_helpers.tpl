{{/* Name of the chart, or nameOverride. */}}
{{- define "sso-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: fullnameOverride, else <release>-<name> (just <release> when it contains the name). */}}
{{- define "sso-proxy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sso-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sso-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sso-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sso-proxy.labels" -}}
helm.sh/chart: {{ include "sso-proxy.chart" . }}
{{ include "sso-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{- define "sso-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sso-proxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the pod reads with envFrom: existingSecret, or the chart's own. */}}
{{- define "sso-proxy.secretName" -}}
{{- default (include "sso-proxy.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "sso-proxy.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The port of a listen address ("0.0.0.0:4180", "[::]:4180"); fails on anything else. */}}
{{- define "sso-proxy.portOf" -}}
{{- $port := regexFind "[0-9]+$" .addr }}
{{- if or (not (regexMatch ":[0-9]+$" .addr)) (lt (atoi $port) 1) (gt (atoi $port) 65535) }}
{{- fail (printf "%s must be HOST:PORT with a port from 1 to 65535, got %q" .key .addr) }}
{{- end }}
{{- $port }}
{{- end }}

{{/* Container port of the main listener (config.listen, default 0.0.0.0:4180). */}}
{{- define "sso-proxy.httpPort" -}}
{{- include "sso-proxy.portOf" (dict "key" "config.listen" "addr" (toString (default "0.0.0.0:4180" .Values.config.listen))) }}
{{- end }}

{{/* Container port of the metrics listener, or "" when config.metrics.listen is unset. */}}
{{- define "sso-proxy.metricsPort" -}}
{{- $metrics := default (dict) .Values.config.metrics }}
{{- if $metrics.listen }}
{{- include "sso-proxy.portOf" (dict "key" "config.metrics.listen" "addr" (toString $metrics.listen)) }}
{{- end }}
{{- end }}

{{/*
Checks that values cannot express in values.schema.json. Included once, from the ConfigMap,
which every mode renders.
*/}}
{{- define "sso-proxy.validate" -}}
{{- $c := .Values.config }}
{{- /* Secrets belong in the Secret, not in the ConfigMap. */}}
{{- $session := default (dict) $c.session }}
{{- $admin := default (dict) $c.admin }}
{{- $clearml := default (dict) $c.clearml }}
{{- range $key, $v := dict "session.secret" $session.secret "admin.token" $admin.token "clearml.api_key" $clearml.api_key "clearml.api_secret" $clearml.api_secret }}
{{- if $v }}
{{- fail (printf "config.%s is a secret and would land in a ConfigMap: use the matching secret.* value (or secret.existingSecret) instead" $key) }}
{{- end }}
{{- end }}
{{- range $id, $p := (default (dict) $c.providers) }}
{{- range $key := list "client_secret" "sp_private_key" }}
{{- if and (kindIs "map" $p) (get $p $key) }}
{{- fail (printf "config.providers.%s.%s is a secret and would land in a ConfigMap: use secret.%s.%s instead" $id $key (ternary "clientSecrets" "spPrivateKeys" (eq $key "client_secret")) $id) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $id, $_ := merge (dict) .Values.secret.clientSecrets .Values.secret.spPrivateKeys }}
{{- if not (regexMatch "^[a-z0-9_-]+$" $id) }}
{{- fail (printf "secret.clientSecrets / secret.spPrivateKeys: %q is not a connection id ([a-z0-9_-]+)" $id) }}
{{- end }}
{{- end }}
{{- /* Ports must parse. */}}
{{- $_ := include "sso-proxy.httpPort" . }}
{{- $_ := include "sso-proxy.metricsPort" . }}
{{- if eq .Values.mode "standalone" }}
{{- /* The state database must be on the writable volume. */}}
{{- $state := default (dict) $c.state }}
{{- $path := toString (default "sso-proxy.db" $state.path) }}
{{- $mount := trimSuffix "/" .Values.persistence.mountPath }}
{{- if and (hasPrefix "/" $path) (not (hasPrefix (printf "%s/" $mount) $path)) }}
{{- fail (printf "config.state.path %q is not under persistence.mountPath %q: the root filesystem is read-only, so the database could not be written" $path .Values.persistence.mountPath) }}
{{- end }}
{{- /* More than one pod needs a session store every pod can read. */}}
{{- $store := toString (default "memory" $session.store) }}
{{- $many := or (and (not .Values.autoscaling.enabled) (gt (int .Values.replicaCount) 1)) (and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) 1)) }}
{{- if and $many (eq $store "memory") }}
{{- fail "more than one replica (replicaCount or autoscaling.maxReplicas > 1) needs a shared session store (config.session.store: redis://...) or config.session.store: cookie; the in-process memory store would log people out whenever a request reaches another pod" }}
{{- end }}
{{- if and $many .Values.persistence.enabled (not .Values.persistence.existingClaim) (has "ReadWriteOnce" .Values.persistence.accessModes) }}
{{- fail "more than one replica with persistence.accessModes ReadWriteOnce: pods on other nodes could not mount the volume; use ReadWriteMany (every pod then shares the SQLite file) or one replica" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not (include "sso-proxy.metricsPort" .)) }}
{{- fail "metrics.serviceMonitor.enabled needs config.metrics.listen (e.g. 0.0.0.0:9090): the proxy serves /metrics only there" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: give minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- end }}
{{- /* The chart's own Secret needs the bridge's credential. */}}
{{- if and $clearml.enabled (not .Values.secret.existingSecret) }}
{{- if or (not .Values.secret.clearmlApiKey) (not .Values.secret.clearmlApiSecret) }}
{{- fail "config.clearml.enabled needs secret.clearmlApiKey and secret.clearmlApiSecret (or secret.existingSecret with SSO_PROXY__CLEARML__API_KEY and SSO_PROXY__CLEARML__API_SECRET)" }}
{{- end }}
{{- end }}
{{- end }}
