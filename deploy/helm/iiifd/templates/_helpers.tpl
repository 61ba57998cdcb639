{{- define "iiifd.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "iiifd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "iiifd.labels" -}}
app.kubernetes.io/name: {{ include "iiifd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "iiifd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iiifd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "iiifd.secretName" -}}
{{- default (include "iiifd.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/* The work budget: budgetPercent of the container's memory, in MiB. */}}
{{- define "iiifd.budgetMiB" -}}
{{- div (mul .Values.resources.memoryMiB .Values.resources.budgetPercent) 100 -}}
{{- end -}}

{{- define "iiifd.workers" -}}
{{- if gt (int .Values.resources.workers) 0 -}}{{ .Values.resources.workers }}{{- else -}}{{ mul 2 .Values.resources.cpu }}{{- end -}}
{{- end -}}
