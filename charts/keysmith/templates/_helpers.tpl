{{- define "keysmith.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "keysmith.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "keysmith.labels" -}}
app.kubernetes.io/name: {{ include "keysmith.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "keysmith.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keysmith.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "keysmith.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "keysmith.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "keysmith.leaderElection" -}}
{{- $setting := toString .Values.leaderElection.enabled -}}
{{- if eq $setting "auto" -}}
{{- if gt (int .Values.replicaCount) 1 }}true{{ else }}false{{ end -}}
{{- else -}}
{{- $setting -}}
{{- end -}}
{{- end -}}

{{- define "keysmith.pdb" -}}
{{- $setting := toString .Values.podDisruptionBudget.enabled -}}
{{- if eq $setting "auto" -}}
{{- if gt (int .Values.replicaCount) 1 }}true{{ else }}false{{ end -}}
{{- else -}}
{{- $setting -}}
{{- end -}}
{{- end -}}
