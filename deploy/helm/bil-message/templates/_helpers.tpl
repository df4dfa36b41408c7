{{/*
Names. The full name prefixes every resource: "<release>-bil-message", or the
release name alone when it already contains the chart name.
*/}}
{{- define "bil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bil.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's resources: (dict "root" $ "component" "identity") */}}
{{- define "bil.componentName" -}}
{{- printf "%s-%s" (include "bil.fullname" .root | trunc 48 | trimSuffix "-") .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bil.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bil.labels" -}}
helm.sh/chart: {{ include "bil.chart" . }}
app.kubernetes.io/name: {{ include "bil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: bil-message
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "identity") */}}
{{- define "bil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bil.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "bil.componentLabels" -}}
{{ include "bil.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "bil.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "bil.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bil.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "bil.secretName" -}}
{{- default (include "bil.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The digest trust domain's Secret: service identity seed, key-encryption key, OPENAI_API_KEY and the digest DATABASE_URL. */}}
{{- define "bil.digestSecretName" -}}
{{- default (printf "%s-digest" (include "bil.fullname" .) | trunc 63 | trimSuffix "-") .Values.secrets.digestExistingSecret -}}
{{- end -}}

{{- define "bil.configMapName" -}}
{{- printf "%s-config" (include "bil.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The components: what each runs (the image's entrypoint argument), its
container ports (name -> values key), which port the probes call, the
environment variable that sets each port in the service's config.ts, and the
Secret keys it gets (optional ones may be absent from the Secret): secretEnv
from the release's Secret, digestSecretEnv from the digest trust domain's
Secret (mounted into the digest API and workers only). Every process that
serves or calls internal gRPC gets SERVICE_AUTH_SECRET (the digest worker
does neither).
*/}}
{{- define "bil.components" -}}
identity:
  key: identity
  args: [identity]
  portEnv: { grpc: IDENTITY_GRPC_PORT, metrics: IDENTITY_METRICS_PORT }
  secretEnv: [DATABASE_URL, REDIS_URL, NATS_URL, IDENTITY_JWT_PRIVATE_KEY, SERVICE_AUTH_SECRET]
  optionalSecretEnv: [IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS, SERVICE_AUTH_PREVIOUS_SECRET]
chat:
  key: chat
  args: [chat]
  portEnv: { grpc: CHAT_GRPC_PORT, metrics: CHAT_METRICS_PORT }
  secretEnv: [DATABASE_URL, NATS_URL, SERVICE_AUTH_SECRET]
  optionalSecretEnv: [SERVICE_AUTH_PREVIOUS_SECRET]
delivery:
  key: delivery
  args: [delivery]
  portEnv: { ws: DELIVERY_WS_PORT, metrics: DELIVERY_METRICS_PORT }
  secretEnv: [REDIS_URL, NATS_URL, SERVICE_AUTH_SECRET]
  optionalSecretEnv: [SERVICE_AUTH_PREVIOUS_SECRET, PUSH_VAPID_PUBLIC_KEY, PUSH_VAPID_PRIVATE_KEY]
digest:
  key: digest
  args: [digest]
  portEnv: { grpc: DIGEST_GRPC_PORT, metrics: DIGEST_METRICS_PORT }
  secretEnv: [REDIS_URL, NATS_URL, SERVICE_AUTH_SECRET]
  optionalSecretEnv: [SERVICE_AUTH_PREVIOUS_SECRET]
  digestSecretEnv: [DATABASE_URL, DIGEST_SERVICE_IDENTITY_SEED, DIGEST_KEY_ENCRYPTION_KEY]
  digestOptionalSecretEnv: [OPENAI_API_KEY]
digest-worker:
  key: digestWorker
  args: [digest-worker]
  portEnv: { metrics: DIGEST_WORKER_METRICS_PORT }
  secretEnv: [REDIS_URL]
  optionalSecretEnv: []
  digestSecretEnv: [DATABASE_URL, DIGEST_SERVICE_IDENTITY_SEED, DIGEST_KEY_ENCRYPTION_KEY]
  digestOptionalSecretEnv: [OPENAI_API_KEY]
gateway:
  key: gateway
  args: [gateway]
  portEnv: { http: BIL_GATEWAY_PORT, metrics: GATEWAY_METRICS_PORT }
  secretEnv: [REDIS_URL, SERVICE_AUTH_SECRET]
  optionalSecretEnv: [SERVICE_AUTH_PREVIOUS_SECRET, PUSH_VAPID_PUBLIC_KEY]
{{- end -}}

{{/* Internal addresses. */}}
{{- define "bil.host" -}}
{{- printf "%s.%s.svc.%s" (include "bil.componentName" (dict "root" .root "component" .component)) .root.Release.Namespace .root.Values.config.clusterDomain -}}
{{- end -}}

{{- define "bil.grpcUrl" -}}
{{- $host := include "bil.host" . -}}
{{- if .root.Values.grpcHeadlessServices -}}
{{- printf "dns:///%s:%v" $host .port -}}
{{- else -}}
{{- printf "%s:%v" $host .port -}}
{{- end -}}
{{- end -}}

{{/* Whether delivery may reach the push services (Web Push on, or an existingSecret that may turn it on). */}}
{{- define "bil.pushEgress" -}}
{{- $e := .Values.networkPolicy.pushEgress.enabled -}}
{{- if kindIs "bool" $e -}}
{{- $e -}}
{{- else -}}
{{- or (ne .Values.secrets.vapidPublicKey "") (ne .Values.secrets.existingSecret "") -}}
{{- end -}}
{{- end -}}

{{/* Whether digest workers may reach the model endpoint. */}}
{{- define "bil.llmEgress" -}}
{{- $e := .Values.networkPolicy.llmEgress.enabled -}}
{{- if kindIs "bool" $e -}}
{{- $e -}}
{{- else -}}
{{- or (ne .Values.secrets.openaiApiKey "") (ne .Values.secrets.digestExistingSecret "") -}}
{{- end -}}
{{- end -}}

{{- define "bil.trustProxy" -}}
{{- if kindIs "bool" .Values.gateway.trustProxy -}}
{{- .Values.gateway.trustProxy -}}
{{- else -}}
{{- .Values.ingress.enabled -}}
{{- end -}}
{{- end -}}

{{/*
The Secret's values: what values.yaml gives, else what the Secret already
holds (lookup; empty under `helm template`), else newly generated keys.
Rendered as YAML; include it once per template file and parse with fromYaml.
*/}}
{{- define "bil.secretValues" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "bil.fullname" .) | default dict -}}
{{- $old := get $existing "data" | default dict -}}
{{- $s := .Values.secrets -}}
{{- $out := dict -}}
{{- $_ := set $out "DATABASE_URL" .Values.postgresql.url -}}
{{- $_ := set $out "REDIS_URL" .Values.redis.url -}}
{{- $_ := set $out "NATS_URL" .Values.nats.url -}}
{{- $jwt := $s.jwtPrivateKey -}}
{{- if not $jwt -}}{{- $jwt = get $old "IDENTITY_JWT_PRIVATE_KEY" | b64dec -}}{{- end -}}
{{- if not $jwt -}}{{- $jwt = genPrivateKey "ed25519" -}}{{- end -}}
{{- $_ := set $out "IDENTITY_JWT_PRIVATE_KEY" $jwt -}}
{{- if $s.jwtPreviousPublicKeys -}}{{- $_ := set $out "IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS" $s.jwtPreviousPublicKeys -}}{{- end -}}
{{- /* The secret that signs internal gRPC calls (docs/architecture.md): from values, else kept, else generated. */ -}}
{{- $svc := $s.serviceAuthSecret -}}
{{- if not $svc -}}{{- $svc = get $old "SERVICE_AUTH_SECRET" | b64dec -}}{{- end -}}
{{- if not $svc -}}{{- $svc = randBytes 32 | replace "+" "-" | replace "/" "_" | trimSuffix "=" -}}{{- end -}}
{{- $_ := set $out "SERVICE_AUTH_SECRET" $svc -}}
{{- if $s.serviceAuthPreviousSecret -}}{{- $_ := set $out "SERVICE_AUTH_PREVIOUS_SECRET" $s.serviceAuthPreviousSecret -}}{{- end -}}
{{- if $s.vapidPublicKey -}}{{- $_ := set $out "PUSH_VAPID_PUBLIC_KEY" $s.vapidPublicKey -}}{{- $_ := set $out "PUSH_VAPID_PRIVATE_KEY" $s.vapidPrivateKey -}}{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
The digest trust domain's Secret values: the digest DATABASE_URL
(postgresql.digestUrl, else postgresql.url), the service identity seed and
the key-encryption key (from values, else what the digest Secret holds, else
what an older release kept in the release Secret, else generated), and
OPENAI_API_KEY when given. Rendered as YAML, like bil.secretValues.
*/}}
{{- define "bil.digestSecretValues" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "bil.digestSecretName" .) | default dict -}}
{{- $old := get $existing "data" | default dict -}}
{{- $legacy := get (lookup "v1" "Secret" .Release.Namespace (include "bil.fullname" .) | default dict) "data" | default dict -}}
{{- $s := .Values.secrets -}}
{{- $out := dict -}}
{{- $_ := set $out "DATABASE_URL" (default .Values.postgresql.url .Values.postgresql.digestUrl) -}}
{{- range $key, $value := dict "DIGEST_SERVICE_IDENTITY_SEED" $s.digestServiceIdentitySeed "DIGEST_KEY_ENCRYPTION_KEY" $s.digestKeyEncryptionKey -}}
{{- $v := $value -}}
{{- if not $v -}}{{- $v = get $old $key | b64dec -}}{{- end -}}
{{- if not $v -}}{{- $v = get $legacy $key | b64dec -}}{{- end -}}
{{- if not $v -}}{{- $v = randBytes 32 | replace "+" "-" | replace "/" "_" | trimSuffix "=" -}}{{- end -}}
{{- $_ := set $out $key $v -}}
{{- end -}}
{{- if $s.openaiApiKey -}}{{- $_ := set $out "OPENAI_API_KEY" $s.openaiApiKey -}}{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The fingerprint clients show for a service identity key: SHA-256 of the 32 key bytes, first 16 bytes in hex, groups of 4. */}}
{{- define "bil.keyFingerprint" -}}
{{- $b64 := printf "%s=" (. | replace "-" "+" | replace "_" "/") -}}
{{- $hex := b64dec $b64 | sha256sum | trunc 32 -}}
{{- regexReplaceAll "(.{4})" $hex "${1} " | trim -}}
{{- end -}}

{{/* Checks what the chart can check before anything is applied. */}}
{{- define "bil.validate" -}}
{{- $s := .Values.secrets -}}
{{- $blobs := .Values.chat.blobs -}}
{{- if not (has $blobs.backend (list "postgres" "s3")) -}}
{{- fail "chat.blobs.backend must be postgres or s3" -}}
{{- end -}}
{{- if and (eq $blobs.backend "s3") (not $blobs.s3.bucket) -}}
{{- fail "chat.blobs.backend is s3: set chat.blobs.s3.bucket" -}}
{{- end -}}
{{- if and $s.jwtPrivateKey (not (contains "BEGIN PRIVATE KEY" $s.jwtPrivateKey)) -}}
{{- fail "secrets.jwtPrivateKey must be a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----) of an Ed25519 key: openssl genpkey -algorithm ed25519" -}}
{{- end -}}
{{- range $name, $v := dict "secrets.digestServiceIdentitySeed" $s.digestServiceIdentitySeed "secrets.digestKeyEncryptionKey" $s.digestKeyEncryptionKey -}}
{{- if and $v (not (regexMatch "^[A-Za-z0-9_-]{43}$" $v)) -}}
{{- fail (printf "%s must be 32 bytes in base64url without padding (43 characters): openssl rand 32 | basenc --base64url | tr -d '='" $name) -}}
{{- end -}}
{{- end -}}
{{- range $name, $v := dict "secrets.serviceAuthSecret" $s.serviceAuthSecret "secrets.serviceAuthPreviousSecret" $s.serviceAuthPreviousSecret -}}
{{- if and $v (not (regexMatch "^\\S{32,}$" $v)) -}}
{{- fail (printf "%s must be at least 32 characters without white space: openssl rand -base64 32" $name) -}}
{{- end -}}
{{- end -}}
{{- if ne (empty $s.vapidPublicKey) (empty $s.vapidPrivateKey) -}}
{{- fail "secrets.vapidPublicKey and secrets.vapidPrivateKey: set both (Web Push on) or neither (off): npx web-push generate-vapid-keys" -}}
{{- end -}}
{{- if and $s.existingSecret (not $s.digestExistingSecret) -}}
{{- fail "secrets.existingSecret is set: name the digest trust domain's Secret in secrets.digestExistingSecret too (DATABASE_URL of the digest role, DIGEST_SERVICE_IDENTITY_SEED, DIGEST_KEY_ENCRYPTION_KEY, optional OPENAI_API_KEY; docs/deploy.md)" -}}
{{- end -}}
{{- with .Values.digest.serviceIdentityKey -}}
{{- if not (regexMatch "^[A-Za-z0-9_-]{43}$" .) -}}
{{- fail "digest.serviceIdentityKey must be the public key `node dist/main.js service-key` prints (43 base64url characters)" -}}
{{- end -}}
{{- end -}}
{{- if not $s.existingSecret -}}
{{- range $name, $url := dict "postgresql.url" .Values.postgresql.url "redis.url" .Values.redis.url "nats.url" .Values.nats.url -}}
{{- if not $url -}}{{- fail (printf "%s is empty: set it, or name a Secret holding the URLs in secrets.existingSecret" $name) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $secretNames := list "DATABASE_URL" "REDIS_URL" "NATS_URL" "IDENTITY_JWT_PRIVATE_KEY" "IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS" "SERVICE_AUTH_SECRET" "SERVICE_AUTH_PREVIOUS_SECRET" "DIGEST_SERVICE_IDENTITY_SEED" "DIGEST_KEY_ENCRYPTION_KEY" "OPENAI_API_KEY" -}}
{{- range $k, $_ := .Values.config.extra -}}
{{- if or (has $k $secretNames) (regexMatch "(?i)(PASSWORD|SECRET|PRIVATE_KEY|API_KEY|TOKEN$)" $k) -}}
{{- fail (printf "config.extra.%s looks like a secret: the ConfigMap is readable by anyone who can read the namespace; use the secrets section or secrets.existingSecret" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Pod-level settings shared by every component: (dict "root" $ "component" "identity" "values" <component values>) */}}
{{- define "bil.podCommon" -}}
{{- $v := .values -}}
serviceAccountName: {{ include "bil.serviceAccountName" .root }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.topologySpreadConstraints }}
{{- /* A constraint without a labelSelector counts this component's pods. */}}
{{- $selector := dict "matchLabels" (include "bil.selectorLabels" (dict "root" $.root "component" $.component) | fromYaml) }}
topologySpreadConstraints:
  {{- range . }}
  - {{ toYaml (merge (dict) . (dict "labelSelector" $selector)) | indent 4 | trim }}
  {{- end }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* The chat service's blob storage settings (chat.blobs); credentials from the named Secret. */}}
{{- define "bil.chatBlobEnv" -}}
{{- $b := .Values.chat.blobs -}}
- name: CHAT_BLOB_BACKEND
  value: {{ $b.backend | quote }}
{{- if eq $b.backend "s3" }}
- name: CHAT_S3_BUCKET
  value: {{ $b.s3.bucket | quote }}
- name: CHAT_S3_REGION
  value: {{ $b.s3.region | quote }}
- name: CHAT_S3_PREFIX
  value: {{ $b.s3.prefix | quote }}
- name: CHAT_S3_FORCE_PATH_STYLE
  value: {{ $b.s3.forcePathStyle | toString | quote }}
- name: CHAT_S3_PRESIGN_SECONDS
  value: {{ $b.s3.presignSeconds | toString | quote }}
{{- with $b.s3.endpoint }}
- name: CHAT_S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $b.s3.credentialsSecret }}
- name: CHAT_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: { name: {{ . | quote }}, key: access-key-id }
- name: CHAT_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: { name: {{ . | quote }}, key: secret-access-key }
{{- end }}
{{- end }}
{{- end -}}
