{{/*
The objects' names are fixed, as in manifests/: there is one install per
cluster.
*/}}
{{- define "singleton-webhook.name" -}}singleton-webhook{{- end -}}

{{/* The labels every object carries, as in manifests/. */}}
{{- define "singleton-webhook.labels" -}}
app.kubernetes.io/name: singleton-webhook
{{- end -}}

{{/* The labels of the webhook's Pods, and the selector of its Deployment, Service and PDB. */}}
{{- define "singleton-webhook.selectorLabels" -}}
app.kubernetes.io/name: singleton-webhook
app.kubernetes.io/component: webhook
{{- end -}}

{{/* An image reference from {repository, tag, digest}; the digest wins. */}}
{{- define "singleton-webhook.imageRef" -}}
{{- $img := index . 0 -}}{{- $defaultTag := index . 1 -}}
{{- if $img.digest -}}
{{ $img.repository }}@{{ $img.digest }}
{{- else -}}
{{ $img.repository }}:{{ $img.tag | default $defaultTag }}
{{- end -}}
{{- end -}}

{{/* The webhook's image. */}}
{{- define "singleton-webhook.image" -}}
{{- include "singleton-webhook.imageRef" (list .Values.image .Chart.AppVersion) -}}
{{- end -}}

{{/* The election sidecar's image: the webhook's own unless elector.image.repository is set. */}}
{{- define "singleton-webhook.electorImage" -}}
{{- if .Values.elector.image.repository -}}
{{- include "singleton-webhook.imageRef" (list .Values.elector.image .Chart.AppVersion) -}}
{{- else -}}
{{- include "singleton-webhook.image" . -}}
{{- end -}}
{{- end -}}

{{/*
A Go duration of the form the schema allows (such as 1m30s or 500ms) in
milliseconds.
*/}}
{{- define "singleton-webhook.millis" -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+(ms|h|m|s)" . -1 -}}
{{- $n := regexFind "^[0-9]+" . -}}
{{- $unit := trimPrefix $n . -}}
{{- $scale := get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit -}}
{{- $total = add $total (mul (atoi $n) $scale) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/*
Refuses election timings the sidecar would refuse (sidecar.Timings: the
renew deadline at most the lease − 2% − 250ms, and above 1s + 1.2 × the
retry period), naming the values to change.
*/}}
{{- define "singleton-webhook.validateTimings" -}}
{{- $e := .Values.elector -}}
{{- $lease := include "singleton-webhook.millis" $e.leaseDuration | atoi -}}
{{- $renew := include "singleton-webhook.millis" $e.renewDeadline | atoi -}}
{{- $retry := include "singleton-webhook.millis" $e.retryPeriod | atoi -}}
{{- range $k, $v := dict "leaseDuration" $lease "renewDeadline" $renew "retryPeriod" $retry -}}
{{- if le $v 0 -}}
{{- fail (printf "elector.%s (%s) must be greater than zero" $k (get $e $k)) -}}
{{- end -}}
{{- end -}}
{{- if ne (mod $lease 1000) 0 -}}
{{- fail (printf "elector.leaseDuration (%s) must be a whole number of seconds (the Lease stores seconds)" $e.leaseDuration) -}}
{{- end -}}
{{- if gt $renew (sub $lease (add (div (mul $lease 2) 100) 250)) -}}
{{- fail (printf "elector.renewDeadline (%s) must be at most elector.leaseDuration (%s) - 2%% of it - 250ms" $e.renewDeadline $e.leaseDuration) -}}
{{- end -}}
{{- if le (mul $renew 10) (add 10000 (mul $retry 12)) -}}
{{- fail (printf "elector.renewDeadline (%s) must be greater than 1s + 1.2 x elector.retryPeriod (%s)" $e.renewDeadline $e.retryPeriod) -}}
{{- end -}}
{{- end -}}

{{/*
The namespaceSelector of both webhook entries: never the excluded namespaces
(the webhook's own included, so it can always restart itself), and not a
namespace an administrator labelled out.
*/}}
{{- define "singleton-webhook.namespaceSelector" -}}
{{- $excluded := index . 0 -}}{{- $optOut := index . 1 -}}
matchExpressions:
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: [{{ join ", " $excluded }}]
- key: {{ $optOut.key }}
  operator: NotIn
  values: [{{ $optOut.value }}]
{{- end -}}
