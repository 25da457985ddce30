{{/*
Chart name, or nameOverride.
*/}}
{{- define "hyperrec.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters (the DNS label limit). When the release name
already contains the chart name it is used alone, so release "hyperrec" gives "hyperrec".
*/}}
{{- define "hyperrec.fullname" -}}
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

{{/*
Name of one of the release's objects: "<fullname>-<suffix>", also held to 63 characters.
Usage: include "hyperrec.componentName" (list . "drift")
*/}}
{{- define "hyperrec.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "hyperrec.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "hyperrec.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "hyperrec.labels" -}}
helm.sh/chart: {{ include "hyperrec.chart" . }}
{{ include "hyperrec.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hyperrec
{{- end }}

{{/*
Selector labels: stable across upgrades, so they may sit in selectors.
*/}}
{{- define "hyperrec.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hyperrec.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The hyperrec image reference.
*/}}
{{- define "hyperrec.image" -}}
{{- include "hyperrec.imageRef" (list . .Values.image) }}
{{- end }}

{{/*
The slim serving image reference (no torch): the transformer runs it.
*/}}
{{- define "hyperrec.servingImage" -}}
{{- include "hyperrec.imageRef" (list . .Values.servingImage) }}
{{- end }}

{{/*
"repository:tag[@digest]" of an image value (list $ .Values.<image>); the tag defaults to the appVersion.
*/}}
{{- define "hyperrec.imageRef" -}}
{{- $root := index . 0 }}
{{- $values := index . 1 }}
{{- $image := printf "%s:%s" $values.repository (default $root.Chart.AppVersion $values.tag) }}
{{- if $values.digest }}
{{- $image = printf "%s@%s" $image $values.digest }}
{{- end }}
{{- $image }}
{{- end }}

{{/*
ServiceAccount of the serving pods.
*/}}
{{- define "hyperrec.servingServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hyperrec.componentName" (list . "serving")) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
PVC of the feedback log.
*/}}
{{- define "hyperrec.feedbackClaimName" -}}
{{- default (include "hyperrec.componentName" (list . "feedback")) .Values.feedbackLog.existingClaim }}
{{- end }}

{{/*
Fails the render when a replica range is inverted. Usage: include "hyperrec.checkReplicas" (list "predictor" .Values.predictor)
*/}}
{{- define "hyperrec.checkReplicas" -}}
{{- $name := index . 0 }}
{{- $component := index . 1 }}
{{- if gt (int $component.minReplicas) (int $component.maxReplicas) }}
{{- fail (printf "%s.minReplicas (%d) must not exceed %s.maxReplicas (%d)" $name (int $component.minReplicas) $name (int $component.maxReplicas)) }}
{{- end }}
{{- end }}

{{/*
Root of the serving bundle whose Triton repository predictor.storageUri names: the URI without its last
segment "triton", keeping the slash (".../<version>/"), so that the storage initializer's prefix match stays
inside this version's folder. The transformer downloads it; both components then serve the same bundle.
*/}}
{{- define "hyperrec.bundleRootUri" -}}
{{- $uri := trimSuffix "/" (required "predictor.storageUri is required: the Triton repository of a registered model bundle, e.g. s3://hyperrec-models/<model>/<version>/triton" .Values.predictor.storageUri) }}
{{- if not (hasSuffix "/triton" $uri) }}
{{- fail (printf "predictor.storageUri must name the triton/ folder of a serving bundle (<bundle root>/triton), got %q: the transformer reads the bundle root" .Values.predictor.storageUri) }}
{{- end }}
{{- trimSuffix "triton" $uri }}
{{- end }}

{{/*
Fails the render when a component's scaleMetric does not fit the deployment mode: Knative's Pod Autoscaler
(Serverless) scales on concurrency or rps, KServe's HPA (RawDeployment) on cpu or memory.
Usage: include "hyperrec.checkScaleMetric" (list "predictor" .Values.predictor .Values.inferenceService.deploymentMode)
*/}}
{{- define "hyperrec.checkScaleMetric" -}}
{{- $name := index . 0 }}
{{- $component := index . 1 }}
{{- $mode := index . 2 }}
{{- $allowed := list "cpu" "memory" }}
{{- if eq $mode "Serverless" }}
{{- $allowed = list "concurrency" "rps" }}
{{- end }}
{{- if not (has $component.scaleMetric $allowed) }}
{{- fail (printf "%s.scaleMetric %q does not work in %s mode: use one of %s" $name $component.scaleMetric $mode (join ", " $allowed)) }}
{{- end }}
{{- end }}

{{/*
Knative Pod Autoscaler annotations of a component in Serverless mode: what KServe's minReplicas, maxReplicas,
scaleMetric and scaleTarget fields cannot say (KServe writes those four into min-scale, max-scale, metric and
target itself). Usage: include "hyperrec.kpaAnnotations" .Values.predictor.kpa
*/}}
{{- define "hyperrec.kpaAnnotations" -}}
autoscaling.knative.dev/class: kpa.autoscaling.knative.dev
autoscaling.knative.dev/target-utilization-percentage: {{ .targetUtilizationPercentage | quote }}
autoscaling.knative.dev/window: {{ .window | quote }}
autoscaling.knative.dev/scale-down-delay: {{ .scaleDownDelay | quote }}
{{- end }}
