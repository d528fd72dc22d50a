{{/* The release's base name, at most 40 characters so derived names stay under 63. */}}
{{- define "radar.fullname" -}}
{{- printf "%s-radar" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* The node StatefulSet, and its headless Service (the same name, as pod DNS needs). */}}
{{- define "radar.nodes" -}}
{{- printf "%s-node" (include "radar.fullname" .) -}}
{{- end -}}

{{- define "radar.routers" -}}
{{- printf "%s-router" (include "radar.fullname" .) -}}
{{- end -}}

{{- define "radar.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "radar.labels" -}}
app.kubernetes.io/name: radar
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "radar.commonLabels" . }}
{{- end -}}

{{/* What every object carries beside the labels that select it. */}}
{{- define "radar.commonLabels" -}}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "radar.nodeSelectorLabels" -}}
app.kubernetes.io/name: radar
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node
{{- end -}}

{{- define "radar.routerSelectorLabels" -}}
app.kubernetes.io/name: radar
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: router
{{- end -}}

{{/* Every node's cluster gRPC address, by its stable DNS name. */}}
{{- define "radar.seeds" -}}
{{- $nodes := include "radar.nodes" . -}}
{{- $seeds := list -}}
{{- range $i := until (int .Values.nodes.replicas) -}}
{{- $seeds = append $seeds (printf "%s-%d.%s.%s.svc.cluster.local:7560" $nodes $i $nodes $.Release.Namespace) -}}
{{- end -}}
{{- join "," $seeds -}}
{{- end -}}

{{- define "radar.clusterTlsSecret" -}}
{{- default (printf "%s-cluster-tls" (include "radar.fullname" .)) .Values.cluster.tls.existingSecret -}}
{{- end -}}

{{- define "radar.cpeSecret" -}}
{{- default (printf "%s-cpe-credentials" (include "radar.fullname" .)) .Values.cpe.existingSecret -}}
{{- end -}}

{{- define "radar.authSecret" -}}
{{- default (printf "%s-admin-token" (include "radar.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/* The cluster's mutual TLS, as node and router configs name it. */}}
{{- define "radar.clusterTlsToml" -}}
tls = { ca = "/etc/radar/cluster-tls/ca.crt", cert = "/etc/radar/cluster-tls/tls.crt", key = "/etc/radar/cluster-tls/tls.key" }
{{- end -}}
