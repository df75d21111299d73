# ---------------------------------------------------------------- shell sessions
begin('shell/deploy_session.txt')
end(f'''$ cd ~/src/payments-api
$ git log --oneline -3
{sha1()[:7]} Bump chart version
{sha1()[:7]} Fix token refresh race in client
{sha1()[:7]} Merge pull request #412 from acme/retry-backoff
$ export GITHUB_TOKEN={S(gh(), 'github_token')}
$ export AWS_ACCESS_KEY_ID={S(akia(), 'aws_access_key')}
$ export AWS_SECRET_ACCESS_KEY={S(awssec(), 'aws_secret_key')}
$ export AWS_REGION=eu-west-1
$ aws sts get-caller-identity
{{
    "UserId": "AIDA{r(UPPER,17)}",
    "Account": "{r(string.digits,12)}",
    "Arn": "arn:aws:iam::{r(string.digits,12)}:user/ci-deployer"
}}
$ kubectl -n payments rollout restart deploy/api
deployment.apps/api restarted
$ kubectl -n payments get pods -l app=api -o wide | head -3
NAME                   READY   STATUS    RESTARTS   AGE
api-7d9f8b6c5d-x2k4q   1/1     Running   0          12s
api-7d9f8b6c5d-p9m3z   1/1     Running   0          9s
$ echo "request {uid()} done"
request {uid()} done
''')

begin('shell/history_db.txt')
end(f'''  501  mysql -h db.internal -u root -p{S(pw(), 'secret_assignment')} -e "show databases"
  502  mysqldump --single-transaction -u backup --password={S(pw(), 'secret_assignment')} shop > shop.sql
  503  psql "postgresql://report:{S(pw(), 'url_password')}@pg.internal:5432/analytics?sslmode=require" -c '\\dt'
  504  PGPASSWORD={S(pw(), 'secret_assignment')} pg_dump -h pg.internal -U app app > app.sql
  505  redis-cli -h cache.internal -a {S(pw(), 'secret_assignment')} INFO keyspace
  506  sshpass -p '{S(pw(), 'secret_assignment')}' ssh deploy@10.0.4.12 uptime
  507  history | grep token
  508  ls -la ~/.ssh
''')

begin('shell/aws_configure.txt')
ak, sk, st = akia('ASIA'), awssec(), 'FwoGZXIvYXdzE' + r(B64, 300)
end(f'''$ aws configure set aws_access_key_id {S(akia(), 'aws_access_key')} --profile ci
$ aws configure set aws_secret_access_key {S(awssec(), 'aws_secret_key')} --profile ci
$ aws sts assume-role --role-arn arn:aws:iam::123456789012:role/deployer --role-session-name ci-{r(string.digits,6)}
{{
    "Credentials": {{
        "AccessKeyId": "{S(ak, 'aws_access_key')}",
        "SecretAccessKey": "{S(sk, 'aws_secret_key')}",
        "SessionToken": "{S(st)}",
        "Expiration": "2026-03-14T18:22:31+00:00"
    }},
    "AssumedRoleUser": {{
        "AssumedRoleId": "AROA{r(UPPER,17)}:ci",
        "Arn": "arn:aws:sts::123456789012:assumed-role/deployer/ci"
    }}
}}
$ cat ~/.aws/config
[profile ci]
region = us-east-1
output = json
''')

begin('shell/docker_login.txt')
end(f'''$ echo "$REGISTRY_TOKEN" | docker login registry.gitlab.com -u ci --password-stdin
Login Succeeded
$ docker login -u deploybot -p {S(pw(), 'secret_assignment')} harbor.internal
WARNING! Using --password via the CLI is insecure. Use --password-stdin.
Login Succeeded
$ docker pull harbor.internal/library/api@sha256:{sha256()}
sha256:{sha256()}: Pulling from library/api
Digest: sha256:{sha256()}
Status: Downloaded newer image for harbor.internal/library/api
$ docker images --digests | head -2
REPOSITORY   TAG      DIGEST                                                                    IMAGE ID       CREATED
api          latest   sha256:{sha256()}   {hexs(12)}   2 days ago
''')

begin('shell/stripe_curl.sh')
end(f'''#!/usr/bin/env bash
set -euo pipefail
# refund the duplicate charge from ticket SUP-2291
curl https://api.stripe.com/v1/refunds \\
  -u {S(stripe(), 'stripe_key')}: \\
  -d charge=ch_{r(ALNUM,24)} \\
  -d reason=duplicate
# docs example, safe to keep:
# curl https://api.stripe.com/v1/charges -u sk_test_4eC39HqLyjWDarjtT1zdp7dc:
''')

begin('shell/slack_notify.sh')
end(f'''#!/bin/sh
# post the release note to #deploys
SLACK_WEBHOOK="https://hooks.slack.com/services/{S(hookpath(), 'slack_webhook')}"
curl -s -X POST -H 'Content-type: application/json' \\
  --data '{{"text":"payments-api {r(string.digits,1)}.{r(string.digits,2)}.0 deployed"}}' "$SLACK_WEBHOOK"
# and as the bot, with a thread
curl -s -H "Authorization: Bearer {S(xoxb(), 'slack_token')}" \\
  -d channel=C{r(UPPER,10)} -d text=done https://slack.com/api/chat.postMessage
# example from the docs (not a real hook):
# https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX
''')

begin('shell/telegram_bot.sh')
end(f'''#!/bin/bash
BOT="{S(tg(), 'telegram_bot_token')}"
CHAT_ID=-100{r(string.digits,10)}
curl -s "https://api.telegram.org/bot${{BOT}}/sendMessage" -d chat_id=$CHAT_ID -d text="backup finished"
curl -s https://api.telegram.org/bot{S(tg(), 'telegram_bot_token')}/getUpdates | jq '.result[-1]'
''')

begin('shell/openssl_keys.txt')
end(f'''$ openssl genrsa -aes256 -passout pass:{S(pw(), 'secret_assignment')} -out server.key 4096
$ openssl req -new -key server.key -passin pass:{S(pw(), 'secret_assignment')} -subj "/CN=api.internal" -out server.csr
$ openssl x509 -in server.crt -noout -fingerprint -sha256
sha256 Fingerprint={':'.join(r(HEX.upper(),2) for _ in range(32))}
$ sha256sum server.csr
{sha256()}  server.csr
''')

begin('shell/negatives_only.sh')
end(f'''#!/usr/bin/env bash
# Everything here is safe: references, digests, ids.
export TOKEN=${{TOKEN}}
export API_KEY="$API_KEY"
export DB_PASSWORD=$(cat /run/secrets/db_password)
echo "$GITHUB_TOKEN" | gh auth login --with-token
docker login -u ci --password-stdin < /run/secrets/registry
curl -H "Authorization: Bearer $ACCESS_TOKEN" https://api.internal/v1/me
curl -H "Authorization: Bearer ${{SERVICE_TOKEN}}" https://api.internal/v1/jobs
git rev-parse HEAD   # {sha1()}
sha256sum release.tar.gz  # {sha256()}
uuidgen  # {uid()}
echo "request_id={uid()} trace_id={hexs(32)} span_id={hexs(16)}"
kubectl get secret db-credentials -o jsonpath='{{.data.password}}' | base64 -d > /dev/null
read -s -p "Password: " PASSWORD
export SECRET_KEY=${{SECRET_KEY:-}}
echo "token refresh ok for {uid()}"
''')

begin('shell/gcloud_session.txt')
sa_pk = pem('PRIVATE KEY', 1200, b'\x30\x82\x04\xbd\x02\x01\x00\x30\x0d', sep='\\n') + '\\n'
end(f'''$ gcloud auth activate-service-account --key-file=/tmp/sa.json
Activated service account credentials for: [deployer@acme-prod.iam.gserviceaccount.com]
$ curl "https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key={S(aiza(), 'gcp_api_key')}"
$ gcloud config list
[core]
account = deployer@acme-prod.iam.gserviceaccount.com
project = acme-prod
$ gcloud projects describe acme-prod --format='value(projectNumber)'
{r(string.digits,12)}
''')

# ---------------------------------------------------------------- env files and dumps
begin('env/app.env')
end(f'''# app settings
APP_ENV=production
PORT=8080
LOG_LEVEL=info
DATABASE_URL=postgres://app:{S(pw(), 'url_password')}@db.internal:5432/app?sslmode=require
REDIS_URL=redis://:{S(pw(), 'url_password')}@cache.internal:6379/0
SECRET_KEY_BASE={S(hexs(128), 'secret_assignment')}
STRIPE_SECRET_KEY={S(stripe(), 'stripe_key')}
STRIPE_PUBLISHABLE_KEY=pk_live_{r(ALNUM,99)}
OPENAI_API_KEY={S(openai(), 'openai_key')}
ANTHROPIC_API_KEY={S(anthropic(), 'anthropic_key')}
SENTRY_DSN=https://{hexs(32)}@o{r(string.digits,6)}.ingest.sentry.io/{r(string.digits,7)}
# placeholders that ship with the template
MAILGUN_API_KEY=YOUR_API_KEY
SMTP_PASSWORD=changeme
EMPTY_TOKEN=
FEATURE_FLAGS=checkout_v2,search_beta
''')

begin('env/env_dump.txt')
end(f'''HOSTNAME=runner-{hexs(8)}-project-{r(string.digits,5)}
HOME=/root
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LANG=C.UTF-8
CI=true
CI_COMMIT_SHA={sha1()}
CI_PIPELINE_ID={r(string.digits,9)}
CI_JOB_ID={r(string.digits,10)}
GITLAB_TOKEN={S(glpat(), 'gitlab_token')}
TWILIO_ACCOUNT_SID=AC{hexs(32)}
TWILIO_AUTH_TOKEN={S(hexs(32), 'twilio_key')}
TWILIO_API_KEY={S(twsk(), 'twilio_key')}
TWILIO_API_SECRET={S(r(ALNUM,32), 'twilio_key')}
AWS_SESSION_TOKEN={S('IQoJb3JpZ2luX2VjE' + r(B64, 280))}
TERM=xterm
SHLVL=1
_=/usr/bin/env
''')

begin('env/dotenv_example.env')
end('''# Copy to .env and fill in. Nothing here is a real credential.
DATABASE_URL=postgres://user:password@localhost:5432/app
API_KEY=YOUR_API_KEY
API_SECRET=<your-api-secret>
GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
SLACK_BOT_TOKEN=xoxb-your-bot-token
OPENAI_API_KEY=sk-...
JWT_SECRET=changeme
SESSION_SECRET=
AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
ADMIN_PASSWORD=********
WEBHOOK_SECRET=replace-me
''')

begin('env/ci_printenv.txt')
end(f'''GITHUB_ACTIONS=true
GITHUB_REPOSITORY=acme/storefront
GITHUB_SHA={sha1()}
GITHUB_RUN_ID={r(string.digits,10)}
RUNNER_OS=Linux
NPM_TOKEN={S(npm(), 'high_entropy')}
HF_TOKEN={S(hf(), 'high_entropy')}
ONY_TOKEN={S(onytok(), 'high_entropy')}
NODE_VERSION=20.11.1
ACTIONS_RUNTIME_URL=https://pipelines.actions.githubusercontent.com/{r(ALNUM,40)}/
''')

begin('env/docker_inspect.json')
end(json.dumps([{
  "Id": sha256(),
  "Created": ts(),
  "Config": {
    "Hostname": hexs(12),
    "Env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "POSTGRES_USER=app",
      "POSTGRES_PASSWORD=" + S(pw(), 'secret_assignment'),
      "POSTGRES_DB=app",
      "PGDATA=/var/lib/postgresql/data",
      "GOSU_VERSION=1.17"
    ],
    "Image": "postgres:16@sha256:" + sha256(),
    "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.config-hash": sha256()}
  }
}], indent=4) + '\n')

begin('env/quoted_values.env')
end(f'''export DB_HOST="db.internal"
export DB_PASSWORD="{S(pw() + ' ' + pw(8), 'secret_assignment')}"
export API_TOKEN='{S(r(ALNUM,40), 'secret_assignment')}'
export JWT_SIGNING_KEY="{S(b64(48), 'secret_assignment')}"
export CACHE_TTL=300
export FEATURE_X=true
''')

begin('env/powershell_env.txt')
end(f'''PS C:\\deploy> $env:AZURE_CLIENT_ID = "{uid()}"
PS C:\\deploy> $env:AZURE_TENANT_ID = "{uid()}"
PS C:\\deploy> $env:AZURE_CLIENT_SECRET = "{S(r(ALNUM + '~._-', 40), 'secret_assignment')}"
PS C:\\deploy> set ADMIN_PASSWORD={S(pw(), 'secret_assignment')}
PS C:\\deploy> az login --service-principal -u $env:AZURE_CLIENT_ID -p $env:AZURE_CLIENT_SECRET --tenant $env:AZURE_TENANT_ID
[
  {{
    "cloudName": "AzureCloud",
    "id": "{uid()}",
    "isDefault": true,
    "state": "Enabled",
    "tenantId": "{uid()}"
  }}
]
''')

begin('env/azure_storage.env')
acct = 'acme' + r(string.ascii_lowercase + string.digits, 8)
end(f'''AZURE_STORAGE_ACCOUNT={acct}
AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName={acct};AccountKey={S(azkey(), 'azure_connection_string')};EndpointSuffix=core.windows.net
AZURE_STORAGE_KEY={S(azkey(), 'azure_storage_key')}
SERVICEBUS_CONNECTION=Endpoint=sb://acme-bus.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={S(b64(32), 'azure_connection_string')}
AZURE_SUBSCRIPTION_ID={uid()}
''')

# ---------------------------------------------------------------- diffs
begin('diff/add_config.diff')
end(f'''diff --git a/config/production.yaml b/config/production.yaml
index {hexs(7)}..{hexs(7)} 100644
--- a/config/production.yaml
+++ b/config/production.yaml
@@ -12,9 +12,13 @@ server:
   port: 8080
   read_timeout: 15s
 payments:
-  provider: sandbox
+  provider: stripe
+  api_key: "{S(stripe(), 'stripe_key')}"
+  webhook_secret: {S(whsec(), 'stripe_key')}
 search:
   url: http://search.internal:9200
+  username: elastic
+  password: "{S(pw(), 'secret_assignment')}"
''')

begin('diff/settings_py.diff')
end(f'''diff --git a/shop/settings.py b/shop/settings.py
index {hexs(7)}..{hexs(7)} 100644
--- a/shop/settings.py
+++ b/shop/settings.py
@@ -20,7 +20,7 @@ BASE_DIR = Path(__file__).resolve().parent.parent
-SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
+SECRET_KEY = "{S('django-insecure-' + r(string.ascii_lowercase + string.digits + '!@#$%^&*(-_=+)', 50), 'secret_assignment')}"
 DEBUG = False
@@ -76,10 +76,10 @@ DATABASES = {{
     "default": {{
         "ENGINE": "django.db.backends.postgresql",
         "NAME": "shop",
         "USER": "shop",
-        "PASSWORD": os.environ.get("DB_PASSWORD"),
+        "PASSWORD": "{S(pw(), 'secret_assignment')}",
         "HOST": "db.internal",
     }}
 }}
''')

begin('diff/remove_secret.diff')
end(f'''diff --git a/deploy/run.sh b/deploy/run.sh
index {hexs(7)}..{hexs(7)} 100755
--- a/deploy/run.sh
+++ b/deploy/run.sh
@@ -1,6 +1,6 @@
 #!/bin/sh
-export SENDGRID_API_KEY={S('SG.' + r(URLSAFE,22) + '.' + r(URLSAFE,43), 'high_entropy')}
+export SENDGRID_API_KEY="$(vault kv get -field=api_key secret/sendgrid)"
 exec ./server --config /etc/app/config.yaml
''')

begin('diff/js_client.diff')
end(f'''diff --git a/src/billing.js b/src/billing.js
index {hexs(7)}..{hexs(7)} 100644
--- a/src/billing.js
+++ b/src/billing.js
@@ -1,5 +1,6 @@
-const stripe = require('stripe')(process.env.STRIPE_KEY);
+const stripe = require('stripe')('{S(stripe('rk_live_'), 'stripe_key')}');
+const openai = new OpenAI({{ apiKey: "{S(openai_old(), 'openai_key')}" }});
 const {{ logger }} = require('./log');
 
 export async function charge(customerId, amount) {{
''')

begin('diff/terraform.diff')
end(f'''diff --git a/infra/main.tf b/infra/main.tf
index {hexs(7)}..{hexs(7)} 100644
--- a/infra/main.tf
+++ b/infra/main.tf
@@ -1,8 +1,10 @@
 provider "aws" {{
   region     = "eu-central-1"
-  profile    = "prod"
+  access_key = "{S(akia(), 'aws_access_key')}"
+  secret_key = "{S(awssec(), 'aws_secret_key')}"
 }}
 
 resource "aws_db_instance" "main" {{
   engine   = "postgres"
-  password = var.db_password
+  password = "{S(pw(), 'secret_assignment')}"
 }}
''')

begin('diff/pem_added.diff')
k = pem('EC PRIVATE KEY', 100, b'\x30\x77\x02\x01\x01\x04\x20', sep='\n', linepfx='+')
end(f'''diff --git a/certs/api.key b/certs/api.key
new file mode 100644
index 0000000..{hexs(7)}
--- /dev/null
+++ b/certs/api.key
@@ -0,0 +1,5 @@
+{S(k, 'private_key')}
''')

begin('diff/lockfile_negatives.diff')
end(f'''diff --git a/package-lock.json b/package-lock.json
index {hexs(7)}..{hexs(7)} 100644
--- a/package-lock.json
+++ b/package-lock.json
@@ -1021,7 +1021,7 @@
     "node_modules/jsonwebtoken": {{
-      "version": "9.0.1",
-      "resolved": "https://registry.npmjs.org/jsonwebtoken/-/jsonwebtoken-9.0.1.tgz",
-      "integrity": "sha512-{b64(64)}",
+      "version": "9.0.2",
+      "resolved": "https://registry.npmjs.org/jsonwebtoken/-/jsonwebtoken-9.0.2.tgz",
+      "integrity": "sha512-{b64(64)}",
       "dependencies": {{
diff --git a/go.sum b/go.sum
index {hexs(7)}..{hexs(7)} 100644
--- a/go.sum
+++ b/go.sum
@@ -40,2 +40,2 @@
-golang.org/x/oauth2 v0.20.0 h1:{b64(32)}
+golang.org/x/oauth2 v0.21.0 h1:{b64(32)}
 golang.org/x/oauth2 v0.21.0/go.mod h1:{b64(32)}
''')

begin('diff/k8s_secret.diff')
end(f'''diff --git a/k8s/secret.yaml b/k8s/secret.yaml
index {hexs(7)}..{hexs(7)} 100644
--- a/k8s/secret.yaml
+++ b/k8s/secret.yaml
@@ -4,6 +4,7 @@ metadata:
   name: api-credentials
 type: Opaque
 stringData:
-  db-password: {S(pw(), 'secret_assignment')}
+  db-password: {S(pw(), 'secret_assignment')}
+  api-token: {S(r(ALNUM,32), 'secret_assignment')}
''')

begin('diff/gha_hardcoded.diff')
end(f'''diff --git a/.github/workflows/release.yml b/.github/workflows/release.yml
index {hexs(7)}..{hexs(7)} 100644
--- a/.github/workflows/release.yml
+++ b/.github/workflows/release.yml
@@ -18,7 +18,7 @@ jobs:
       - uses: actions/checkout@{sha1()}
       - name: Publish
         env:
-          NODE_AUTH_TOKEN: ${{{{ secrets.NPM_TOKEN }}}}
+          NODE_AUTH_TOKEN: {S(npm(), 'high_entropy')}
         run: npm publish --access public
''')

begin('diff/code_refs_negative.diff')
end(f'''diff --git a/internal/auth/config.go b/internal/auth/config.go
index {hexs(7)}..{hexs(7)} 100644
--- a/internal/auth/config.go
+++ b/internal/auth/config.go
@@ -10,12 +10,14 @@ type Config struct {{
-	Password string `json:"password"`
+	Password    string `json:"password" yaml:"password"`
+	TokenTTL    time.Duration `json:"token_ttl"`
+	MaxTokens   int `json:"max_tokens"`
 }}
 
 func Load() Config {{
-	return Config{{Password: os.Getenv("APP_PASSWORD")}}
+	password := os.Getenv("APP_PASSWORD")
+	token := cfg.Token
+	return Config{{Password: password, TokenTTL: 15 * time.Minute}}
 }}
''')

# ---------------------------------------------------------------- tool-call JSON
begin('toolcalls/openai_shell.json')
inner = json.dumps({"command": f"curl -s -H 'Authorization: Bearer {S(openai(), 'openai_key')}' https://api.openai.com/v1/models | jq '.data[].id'"})
end(json.dumps({"id": "chatcmpl-" + r(ALNUM, 29), "object": "chat.completion", "created": 1773400000, "model": "gpt-4o",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_" + r(ALNUM, 24), "type": "function", "function": {"name": "run_shell", "arguments": inner}}]}, "finish_reason": "tool_calls"}],
  "usage": {"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876}}, indent=2) + '\n')

begin('toolcalls/anthropic_tool_use.json')
end(json.dumps({"id": "msg_" + r(ALNUM, 24), "type": "message", "role": "assistant", "model": "claude-sonnet-4",
  "content": [{"type": "text", "text": "I'll set the key and rerun the evals."},
              {"type": "tool_use", "id": "toolu_" + r(ALNUM, 24), "name": "bash",
               "input": {"command": "python evals/run.py --suite smoke", "env": {"ANTHROPIC_API_KEY": S(anthropic(), 'anthropic_key'), "EVAL_SEED": "42"}}}],
  "stop_reason": "tool_use", "usage": {"input_tokens": 2311, "output_tokens": 140, "cache_read_input_tokens": 0}, "max_tokens": 4096}, indent=2) + '\n')

begin('toolcalls/http_request.json')
basic = base64.b64encode(f"svc-reporting:{pw()}".encode()).decode()
end(json.dumps({"tool": "http_request", "arguments": {"method": "POST", "url": "https://api.partner.example.net/v2/orders",
  "headers": {"Authorization": "Basic " + S(basic, 'authorization_header'), "X-Api-Key": S(r(ALNUM, 40), 'secret_assignment'),
              "Content-Type": "application/json", "Idempotency-Key": uid(), "X-Request-Id": uid()},
  "body": {"order_id": r(string.digits, 8), "items": [{"sku": "A-" + r(string.digits, 5), "qty": 2}]}}}, indent=2) + '\n')

begin('toolcalls/db_query.json')
end(json.dumps({"tool": "sql", "arguments": {
  "dsn": f"app:{S(pw(), 'url_password')}@tcp(mysql.internal:3306)/shop?parseTime=true",
  "query": "SELECT id, email FROM customers WHERE created_at > now() - interval 1 day",
  "timeout_ms": 5000}}, indent=2) + '\n')

begin('toolcalls/write_service_account.json')
sa = {"type": "service_account", "project_id": "acme-prod", "private_key_id": hexs(40),
      "private_key": pem('PRIVATE KEY', 1200, b'\x30\x82\x04\xbd\x02\x01\x00\x30\x0d') + '\n',
      "client_email": "deployer@acme-prod.iam.gserviceaccount.com", "client_id": r(string.digits, 21),
      "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token"}
sa_text = json.dumps(sa, indent=2)
pk_escaped = json.dumps(sa["private_key"].rstrip('\n'))[1:-1]
S(pk_escaped, 'gcp_service_account')
end(sa_text + '\n')

begin('toolcalls/tool_result_stdout.json')
tok1 = gh('ghs')
end(json.dumps({"type": "tool_result", "tool_use_id": "toolu_" + r(ALNUM, 24), "content": [{"type": "text", "text":
  f"$ git remote -v\norigin\thttps://x-access-token:{S(tok1, 'github_token')}@github.com/acme/infra.git (fetch)\norigin\thttps://x-access-token:{tok1}@github.com/acme/infra.git (push)\n$ git log -1 --format=%H\n{sha1()}\n"}],
  "is_error": False}, indent=2) + '\n')

begin('toolcalls/negatives.json')
end(json.dumps({"id": uid(), "request_id": uid(), "trace_id": hexs(32), "commit": sha1(), "image": "ghcr.io/acme/api@sha256:" + sha256(),
  "usage": {"input_tokens": 1200, "output_tokens": 300, "max_tokens": 8192, "token_count": 1500},
  "token_type": "Bearer", "expires_in": 3600, "token_url": "https://auth.example.com/oauth/token", "secret_name": "db-credentials",
  "password_policy": {"min_length": 12, "require_digits": True}, "api_key_id": uid(), "key": "user:" + r(string.digits, 6),
  "checksum": sha256(), "etag": '"' + hexs(32) + '"', "session_id": uid(), "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + r(B64, 43) + " ci@acme",
  "auth": {"type": "oauth2", "scopes": ["repo", "read:org"]}, "placeholder": {"api_key": "YOUR_API_KEY", "password": "changeme", "token": "<token>"}}, indent=2) + '\n')

begin('toolcalls/github_api.json')
end(json.dumps({"tool": "github.create_issue", "arguments": {"owner": "acme", "repo": "infra", "title": "Rotate deploy token",
  "body": "The old token was revoked; CI uses the new one now.", "labels": ["security"]},
  "auth": {"token": S(gh('gho'), 'github_token')}}, indent=2) + '\n')

begin('toolcalls/webhook_config.json')
end(json.dumps({"tool": "notify.configure", "arguments": {"slack_webhook_url": "https://hooks.slack.com/services/" + S(hookpath(), 'slack_webhook'),
  "telegram": {"bot_token": S(tg(), 'telegram_bot_token'), "chat_id": "-100" + r(string.digits, 10)},
  "sms": {"provider": "twilio", "from": "+1415555" + r(string.digits, 4)}}}, indent=2) + '\n')

begin('toolcalls/oauth_session.json')
end(json.dumps({"tool": "browser.save_session", "arguments": {"origin": "https://app.example-crm.com",
  "session": {"access_token": S(jwt(), 'jwt'), "refresh_token": S(r(URLSAFE, 64), 'secret_assignment'),
              "id_token": S(jwt({"iss": "https://login.example-crm.com", "sub": uid(), "aud": "crm-web", "email": "ops@acme.io"}), 'jwt'),
              "token_type": "Bearer", "expires_in": 3599}}}, indent=2) + '\n')

begin('toolcalls/openai_args_escaped.log')
key_in_args = r(ALNUM, 32)
end(f'''{ts()} DEBUG agent.tools call={{"name":"deploy","arguments":"{{\\"service\\":\\"billing\\",\\"api_key\\":\\"{S(key_in_args, 'secret_assignment')}\\",\\"dry_run\\":false}}"}}
{ts()} INFO agent.tools result=ok duration_ms=1840
''')

# ---------------------------------------------------------------- logs
begin('logs/app.log')
end(f'''{ts()} INFO  server starting version=2.14.1 commit={sha1()}
{ts()} INFO  db connecting url=postgres://billing:{S(pw(), 'url_password')}@pg-primary.internal:5432/billing
{ts()} INFO  request id={uid()} method=GET path=/v1/invoices status=200 dur=12ms
{ts()} DEBUG outbound headers: {{"Authorization": "Bearer {S(jwt(), 'jwt')}", "Accept": "application/json"}}
{ts()} WARN  token expired for user={uid()}, refreshing
{ts()} INFO  request id={uid()} method=POST path=/v1/payments status=201 dur=88ms
{ts()} ERROR auth failed: invalid api key for tenant={uid()}
{ts()} INFO  password reset email sent to user={uid()}
''')

begin('logs/nginx_access.log')
at = r(URLSAFE, 43)
end(f'''10.0.3.4 - - [14/Mar/2026:10:01:02 +0000] "GET /api/v1/items?page=2&per_page=50 HTTP/1.1" 200 5123 "-" "Mozilla/5.0"
10.0.3.9 - - [14/Mar/2026:10:01:05 +0000] "GET /oauth/callback?code={r(ALNUM,20)}&state={hexs(16)} HTTP/1.1" 302 0 "-" "Mozilla/5.0"
10.0.3.9 - - [14/Mar/2026:10:01:06 +0000] "GET /api/v1/export?access_token={S(at, 'secret_assignment')}&format=csv HTTP/1.1" 200 88123 "-" "curl/8.5.0"
10.0.7.1 - - [14/Mar/2026:10:02:11 +0000] "GET /download/report.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={S(akia(), 'aws_access_key')}%2F20260314%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20260314T100211Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature={S(hexs(64), 'secret_assignment')} HTTP/1.1" 200 44012 "-" "Mozilla/5.0"
10.0.3.4 - - [14/Mar/2026:10:03:40 +0000] "GET /static/app.{hexs(8)}.js HTTP/1.1" 200 120331 "-" "Mozilla/5.0"
''')

begin('logs/k8s_events_negative.log')
end(f'''LAST SEEN   TYPE      REASON              OBJECT                          MESSAGE
2m          Normal    Scheduled           pod/api-{hexs(10)}-{r(string.ascii_lowercase+string.digits,5)}   Successfully assigned payments/api to node-{hexs(6)}
2m          Normal    Pulled              pod/api-{hexs(10)}-{r(string.ascii_lowercase+string.digits,5)}   Container image "ghcr.io/acme/api@sha256:{sha256()}" already present on machine
2m          Normal    Created             pod/api-{hexs(10)}-{r(string.ascii_lowercase+string.digits,5)}   Created container api
90s         Warning   FailedMount         pod/worker-{hexs(10)}-{r(string.ascii_lowercase+string.digits,5)}   MountVolume.SetUp failed for volume "api-token" : secret "api-token" not found
60s         Normal    SecretRotated       secret/db-credentials           rotated by operator, new version {uid()}
''')

begin('logs/python_traceback.log')
end(f'''Traceback (most recent call last):
  File "/app/sync.py", line 88, in <module>
    client = Client(host="ftp.partner.net", user="acme", password="{S(pw(), 'secret_assignment')}")
  File "/app/vendor/ftpclient.py", line 41, in __init__
    self.login(user, password)
ftplib.error_perm: 530 Login incorrect.
Locals at frame 0:
  host = 'ftp.partner.net'
  api_token = '{S(r(ALNUM, 40), 'secret_assignment')}'
  retries = 3
  request_id = '{uid()}'
''')

begin('logs/ci_build.log')
tok = gh('ghs')
end(f'''2026-03-14T09:12:01.0000000Z ##[group]Run actions/checkout@{sha1()[:7]}
2026-03-14T09:12:01.5000000Z Syncing repository: acme/storefront
2026-03-14T09:12:02.1000000Z [command]/usr/bin/git config --local http.https://github.com/.extraheader AUTHORIZATION: basic ***
2026-03-14T09:12:03.7000000Z HEAD is now at {sha1()[:7]} Merge pull request #981
2026-03-14T09:12:05.2000000Z Run npm ci
2026-03-14T09:12:31.9000000Z added 1288 packages in 26s
2026-03-14T09:12:40.0000000Z Run ./scripts/push-docs.sh
2026-03-14T09:12:40.1000000Z + git push https://x-access-token:{S(tok, 'github_token')}@github.com/acme/docs.git HEAD:gh-pages
2026-03-14T09:12:42.3000000Z To https://github.com/acme/docs.git
2026-03-14T09:12:42.3000000Z    {sha1()[:7]}..{sha1()[:7]}  HEAD -> gh-pages
2026-03-14T09:12:42.5000000Z NODE_AUTH_TOKEN: ***
''')

begin('logs/json_lines.log')
end('\n'.join(json.dumps(x) for x in [
  {"ts": ts(), "level": "info", "msg": "client configured", "provider": "mailgun", "api_key": S(hexs(32) + '-' + hexs(8) + '-' + hexs(8), 'secret_assignment'), "domain": "mg.acme.io"},
  {"ts": ts(), "level": "info", "msg": "request", "request_id": uid(), "status": 200, "latency_ms": 41},
  {"ts": ts(), "level": "debug", "msg": "vault token renewed", "client_token": S("hvs." + r(ALNUM, 90), 'secret_assignment'), "ttl": "768h"},
  {"ts": ts(), "level": "info", "msg": "cache hit", "key": "session:" + uid(), "ttl": 300},
  {"ts": ts(), "level": "warn", "msg": "slow query", "sql": "SELECT * FROM orders WHERE id = $1", "duration_ms": 1200},
]) + '\n')

begin('logs/curl_verbose.log')
cookie = r(ALNUM, 48)
end(f'''*   Trying 10.0.8.21:443...
* Connected to admin.internal (10.0.8.21) port 443
> POST /api/login HTTP/2
> Host: admin.internal
> User-Agent: curl/8.5.0
> Authorization: Basic {S(base64.b64encode(f"admin:{pw()}".encode()).decode(), 'authorization_header')}
> Accept: */*
>
< HTTP/2 200
< content-type: application/json
< set-cookie: sessionid={S(cookie, 'authorization_header')}; Path=/; HttpOnly; Secure; SameSite=Lax
< x-request-id: {uid()}
<
{{"ok":true,"user":"admin"}}
''')

begin('logs/bot_startup.log')
end(f'''{ts()} INFO starting notifier v1.3.0
{ts()} DEBUG telegram: using token {S(tg(), 'telegram_bot_token')}
{ts()} DEBUG slack: app token {S(xapp(), 'slack_token')} user token {S(xoxp(), 'slack_token')}
{ts()} INFO connected, listening for events
''')

begin('logs/twilio_sms.log')
sk_sid = twsk()
end(f'''{ts()} INFO sms: sending via twilio account=AC{hexs(32)} from=+1415555{r(string.digits,4)}
{ts()} DEBUG sms: POST https://api.twilio.com/2010-04-01/Accounts/AC{hexs(32)}/Messages.json auth={S(sk_sid, 'twilio_key')}:{S(r(ALNUM,32), 'twilio_key')}
{ts()} INFO sms: queued sid=SM{hexs(32)}
''')

begin('logs/negatives.log')
end(f'''{ts()} INFO build {sha1()} published sha256:{sha256()}
{ts()} INFO migration 20260314_add_tokens_table applied in 1.2s
{ts()} INFO user {uid()} changed their password
{ts()} WARN token expired for session {uid()}
{ts()} INFO api key rotated for tenant {uid()} (fingerprint {hexs(16)})
{ts()} INFO md5 of upload: {hexs(32)}
{ts()} INFO commit {sha1()} "Fix token refresh when secret rotates"
{ts()} DEBUG cache key=user:{r(string.digits,6)}:profile
{ts()} INFO download integrity sha512-{b64(64)}
{ts()} INFO request_id={uid()} password_reset=true
{ts()} INFO password: ******** (masked)
''')

# ---------------------------------------------------------------- PEM blocks
begin('pem/rsa.pem')
end(S(pem(), 'private_key') + '\n')

begin('pem/openssh.txt')
end(f'''$ cat ~/.ssh/id_ed25519
{S(openssh(), 'private_key')}
$ cat ~/.ssh/id_ed25519.pub
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{r(B64, 43)} deploy@bastion
''')

begin('pem/tls_values.yaml')
block = pem('EC PRIVATE KEY', 100, b'\x30\x77\x02\x01\x01\x04\x20')
ind = '\n'.join('    ' + l for l in block.split('\n'))
end(f'''ingress:
  enabled: true
  tls:
    crt: |
    key: |
{S(ind[4:], 'private_key').join(['    ', ''])}
''')

begin('pem/public_only.pem')
cert = base64.b64encode(b'\x30\x82\x03\x5c' + rng.randbytes(860)).decode()
pub = base64.b64encode(b'\x30\x82\x01\x22' + rng.randbytes(290)).decode()
end('-----BEGIN CERTIFICATE-----\n' + '\n'.join(cert[i:i+64] for i in range(0, len(cert), 64)) + '\n-----END CERTIFICATE-----\n'
    '-----BEGIN PUBLIC KEY-----\n' + '\n'.join(pub[i:i+64] for i in range(0, len(pub), 64)) + '\n-----END PUBLIC KEY-----\n')

begin('pem/pkcs8_in_json.json')
p8 = pem('PRIVATE KEY', 1200, b'\x30\x82\x04\xbd\x02\x01\x00\x30\x0d') + '\n'
end(json.dumps({"name": "signing", "algorithm": "RS256", "key": p8, "kid": uid()}, indent=2) + '\n')
S(json.dumps(p8.rstrip('\n'))[1:-1], 'private_key')
docs[-1]['secrets'] = cur['secrets']

begin('pem/encrypted.pem')
encpem = pem('ENCRYPTED PRIVATE KEY', 1250, b'\x30\x82\x05\x1e\x30\x40')
end(f'''Proc-Type is in the header below; the key is still secret.
{S(encpem, 'private_key')}
''')

begin('pem/truncated.log')
trunc = pem('RSA PRIVATE KEY').split('\n')[:9]
body = '\n'.join(trunc)
end(f'''{ts()} ERROR loading key failed: unexpected EOF
{ts()} DEBUG key file contents:
{S(body, 'private_key')}
''')

# ---------------------------------------------------------------- encoded tokens
begin('encoded/k8s_secret.yaml')
tlscrt = base64.b64encode(b'-----BEGIN CERTIFICATE-----' + b'\n' + base64.b64encode(rng.randbytes(300)) + b'\n-----END CERTIFICATE-----\n').decode()
tlskey = base64.b64encode(pem('EC PRIVATE KEY', 100, b'\x30\x77\x02\x01\x01\x04\x20').encode() + b'\n').decode()
dockercfg = json.dumps({"auths": {"ghcr.io": {"username": "acme-bot", "password": gh(), "auth": base64.b64encode(f"acme-bot:{gh()}".encode()).decode()}}})
end(f'''apiVersion: v1
kind: Secret
metadata:
  name: regcred
  namespace: payments
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: {S(base64.b64encode(dockercfg.encode()).decode(), 'encoded_secret')}
---
apiVersion: v1
kind: Secret
metadata:
  name: tls
type: kubernetes.io/tls
data:
  tls.crt: {tlscrt}
  tls.key: {S(tlskey, 'encoded_secret')}
''')

begin('encoded/base64_token.txt')
t = gh()
end(f'''$ echo -n {S(base64.b64encode(t.encode()).decode(), 'encoded_secret')} | base64 -d | gh auth login --with-token
$ echo aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEgc2VjcmV0Cg== | base64 -d
hello world, this is not a secret
''')

begin('encoded/url_encoded.txt')
p1 = r(ALNUM, 14)
end(f'''GET /login/continue?next=https%3A%2F%2Fadmin%3A{S(p1, 'encoded_secret')}%40internal.acme.io%2Fdashboard&lang=en HTTP/1.1
POST /hooks/ingest body=payload%3D%7B%22token%22%3A%22{S(gh(), 'encoded_secret')}%22%7D
GET /search?q=rotate%20api%20key%20docs&page=1 HTTP/1.1
''')

begin('encoded/env_blob_b64.txt')
envblob = f"DB_PASSWORD={pw()}\nAPI_TOKEN={r(ALNUM,40)}\nLOG_LEVEL=debug\nREGION=eu-west-1\nFEATURE_FLAGS=a,b,c\n".encode()
wrapped = base64.encodebytes(envblob).decode().rstrip('\n')
end(f'''$ base64 < .env.production
{S(wrapped, 'encoded_secret')}
$ wc -c .env.production
{len(envblob)} .env.production
''')

begin('encoded/negatives.txt')
png = base64.b64encode(b'\x89PNG\r\n\x1a\n' + rng.randbytes(200)).decode()
end(f'''<img src="data:image/png;base64,{png}">
config: {base64.b64encode(b'{"theme":"dark","lang":"en","sidebar":true,"density":"compact"}').decode()}
note: {base64.b64encode(b'Meeting moved to Thursday 3pm, room 4.12').decode()}
hash: {b64(32)}
''')

begin('encoded/double_encoded.txt')
inner = base64.b64encode(f"export SLACK_TOKEN={xoxb()}\n".encode()).decode()
outer = base64.b64encode(inner.encode()).decode()
end(f'''bootstrap_blob: {S(outer, 'encoded_secret')}
''')

# ---------------------------------------------------------------- YAML / k8s
begin('yaml/k8s_secret_stringdata.yaml')
end(f'''apiVersion: v1
kind: Secret
metadata:
  name: app-env
  namespace: shop
type: Opaque
stringData:
  DATABASE_PASSWORD: "{S(pw(), 'secret_assignment')}"
  STRIPE_WEBHOOK_SECRET: {S(whsec(), 'stripe_key')}
  SENTRY_ENVIRONMENT: production
  oauth-client-secret: {S(r(ALNUM + '-_', 35), 'secret_assignment')}
''')

begin('yaml/deployment.yaml')
end(f'''apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: worker
          image: ghcr.io/acme/worker@sha256:{sha256()}
          env:
            - name: DB_PASSWORD
              value: "{S(pw(), 'secret_assignment')}"
            - name: QUEUE_TOKEN
              value: {S(r(ALNUM, 36), 'secret_assignment')}
            - name: LOG_LEVEL
              value: info
            - name: API_KEY
              valueFrom:
                secretKeyRef:
                  name: worker-secrets
                  key: api-key
            - name: REQUEST_TIMEOUT
              value: "30s"
''')

begin('yaml/helm_values.yaml')
end(f'''postgresql:
  enabled: true
  auth:
    username: app
    password: "{S(pw(), 'secret_assignment')}"
    postgresPassword: {S(pw(), 'secret_assignment')}
    existingSecret: ""
redis:
  auth:
    enabled: true
    password: {S(r(ALNUM, 24), 'secret_assignment')}
ingress:
  hosts:
    - api.acme.io
  annotations:
    cert-manager.io/cluster-issuer: letsencrypt
''')

begin('yaml/configmap_negative.yaml')
end(f'''apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  LOG_LEVEL: info
  TOKEN_TTL: 15m
  AUTH_URL: https://auth.acme.io/oauth/authorize
  TOKEN_URL: https://auth.acme.io/oauth/token
  PASSWORD_MIN_LENGTH: "12"
  SECRET_NAME: app-secrets
  API_KEY_HEADER: X-Api-Key
  BUILD_SHA: {sha1()}
  CONFIG_HASH: sha256:{sha256()}
  INSTANCE_ID: {uid()}
---
apiVersion: v1
kind: Pod
spec:
  volumes:
    - name: creds
      secret:
        secretName: db-credentials
  containers:
    - name: app
      envFrom:
        - secretRef:
            name: app-secrets
''')

begin('yaml/docker_compose.yml')
end(f'''services:
  db:
    image: postgres:16
    environment:
      - POSTGRES_USER=shop
      - POSTGRES_PASSWORD={S(pw(), 'secret_assignment')}
  mysql:
    image: mysql:8
    environment:
      MYSQL_ROOT_PASSWORD: {S(pw(), 'secret_assignment')}
      MYSQL_DATABASE: shop
  api:
    build: .
    environment:
      JWT_SECRET: ${{JWT_SECRET}}
      DATABASE_URL: postgres://shop:${{POSTGRES_PASSWORD}}@db:5432/shop
''')

begin('yaml/ansible_vars.yml')
end(f'''---
app_user: deploy
app_db_password: "{{{{ vault_app_db_password }}}}"
smtp_password: !vault |
  $ANSIBLE_VAULT;1.1;AES256
  {hexs(64)}
  {hexs(64)}
  {hexs(40)}
grafana_admin_password: {S(pw(), 'secret_assignment')}
grafana_api_key: {S('glsa_' + r(ALNUM, 32) + '_' + hexs(8), 'secret_assignment')}
ntp_servers:
  - 0.pool.ntp.org
''')

# ---------------------------------------------------------------- CI configs
begin('ci/github_workflow.yml')
end(f'''name: deploy
on:
  push:
    branches: [main]
jobs:
  deploy:
    runs-on: ubuntu-latest
    env:
      AWS_ACCESS_KEY_ID: ${{{{ secrets.AWS_ACCESS_KEY_ID }}}}
      AWS_SECRET_ACCESS_KEY: ${{{{ secrets.AWS_SECRET_ACCESS_KEY }}}}
      DOCKERHUB_TOKEN: {S('dckr_pat_' + r(URLSAFE, 27), 'secret_assignment')}
    steps:
      - uses: actions/checkout@{sha1()}
      - uses: docker/login-action@{sha1()}
        with:
          username: acmebot
          password: ${{{{ secrets.DOCKERHUB_TOKEN }}}}
      - run: ./deploy.sh
''')

begin('ci/gitlab_ci.yml')
end(f'''variables:
  DOCKER_DRIVER: overlay2
  CI_REGISTRY_PASSWORD: $REGISTRY_PASSWORD
  DEPLOY_TOKEN: {S(glpat(), 'gitlab_token')}
stages: [build, deploy]
build:
  stage: build
  script:
    - docker login -u gitlab-ci-token -p $CI_JOB_TOKEN $CI_REGISTRY
    - docker build -t $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA .
deploy:
  stage: deploy
  script:
    - curl --request POST --header "PRIVATE-TOKEN: {S(glpat(), 'gitlab_token')}" "https://gitlab.acme.io/api/v4/projects/42/trigger/pipeline"
''')

begin('ci/circleci_config.yml')
end(f'''version: 2.1
jobs:
  test:
    docker:
      - image: cimg/python:3.12
        auth:
          username: acmeci
          password: {S(pw(), 'secret_assignment')}
    environment:
      CODECOV_TOKEN: {S(uid(), 'secret_assignment')}
      PYTHONHASHSEED: "0"
    steps:
      - checkout
      - run: pytest -q
''')

begin('ci/Jenkinsfile')
end(f'''pipeline {{
  agent any
  stages {{
    stage('Deploy') {{
      steps {{
        withCredentials([string(credentialsId: 'deploy-token', variable: 'TOKEN')]) {{
          sh 'curl -H "Authorization: Bearer $TOKEN" https://deploy.internal/api/run'
        }}
        sh "curl -u admin:{S(pw(), 'secret_assignment')} -X POST https://jenkins.internal/job/smoke/build"
      }}
    }}
  }}
}}
''')

begin('ci/travis.yml')
end(f'''language: node_js
node_js: ["20"]
env:
  global:
    - secure: "{b64(256)}"
deploy:
  provider: npm
  email: ci@acme.io
  api_key:
    secure: "{b64(256)}"
''')

# ---------------------------------------------------------------- code and prose
begin('code/client.py')
end(f'''import os
import requests

API_BASE = "https://api.partner.example.net"
CLIENT_ID = "{uid()}"
CLIENT_SECRET = "{S(r(ALNUM, 48), 'secret_assignment')}"
password = os.environ["PARTNER_PASSWORD"]
token = get_token(CLIENT_ID, CLIENT_SECRET)


def get_token(client_id, client_secret):
    r = requests.post(API_BASE + "/oauth/token", data={{"grant_type": "client_credentials",
                      "client_id": client_id, "client_secret": client_secret}})
    return r.json()["access_token"]


def login(user, password=None):
    return requests.post(API_BASE + "/login", auth=(user, password))
''')

begin('code/config_test.go')
end(f'''package config

import "testing"

// Test vectors published by AWS and jwt.io; they are not secrets.
const (
	exampleKeyID  = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exampleJWT    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

type Settings struct {{
	Password string `json:"password"`
	APIKey   string `json:"api_key"`
	Token    string
}}

func TestLoad(t *testing.T) {{
	s := Settings{{Password: "", APIKey: "test", Token: ""}}
	if s.Password != "" {{
		t.Fatal("password should be empty")
	}}
	id := "{uid()}"
	sum := "{sha256()}"
	_ = id + sum
}}
''')

begin('prose/handoff_summary.txt')
end(f'''Summary of what I did:
1. Rotated the payments API key in the vendor console. The new key is {S(r(ALNUM, 32), 'high_entropy')} and I saved it to the vault under payments/vendor.
2. Restarted the worker deployment (3 replicas, image digest sha256:{sha256()}).
3. Verified request {uid()} succeeds.
The old token was revoked at 10:42 UTC. Commit {sha1()} contains the config change (no secrets in it).
Please approve the production rollout.
''')

begin('prose/incident_notes.md')
end(f'''# Incident 2026-03-12: leaked webhook

- 10:02 An engineer pasted `SLACK_BOT_TOKEN={S(xoxb(), 'slack_token')}` into #general.
- 10:05 Token revoked; new token stored in the secret manager.
- 10:20 Checked audit log: request ids {uid()}, {uid()}.
- Follow-up: enable secret scanning on the repo (commit {sha1()[:10]}).

Passwords are never to be shared in chat. Use the vault link instead.
''')

begin('prose/review_comment.txt')
end(f'''Reviewer note: the fixture in tests/fixtures/session.json contains a real-looking JWT:
{S(jwt(), 'jwt')}
Please replace it with the jwt.io sample, which is fine to commit:
eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c
Also the UUIDs ({uid()}) and the hash {sha1()} are fine.
''')

begin('misc/netrc_and_pgpass.txt')
end(f'''$ cat ~/.netrc
machine api.heroku.com
  login ops@acme.io
  password {S(uid(), 'secret_assignment')}
machine github.com
  login acme-bot
  password {S(gh(), 'github_token')}
$ cat ~/.pgpass
pg.internal:5432:*:report:{S(pw(), 'secret_assignment')}
''')

begin('misc/xml_config.xml')
end(f'''<?xml version="1.0" encoding="UTF-8"?>
<settings>
  <servers>
    <server>
      <id>acme-releases</id>
      <username>deployer</username>
      <password>{S(pw(), 'secret_assignment')}</password>
    </server>
  </servers>
  <properties>
    <sonar.token>{S('squ_' + hexs(40), 'secret_assignment')}</sonar.token>
    <build.number>{r(string.digits, 4)}</build.number>
  </properties>
</settings>
''')

begin('misc/java_properties.properties')
end(f'''spring.datasource.url=jdbc:postgresql://db.internal:5432/orders
spring.datasource.username=orders
spring.datasource.password={S(pw(), 'secret_assignment')}
spring.jpa.hibernate.ddl-auto=validate
jwt.secret={S(b64(48), 'secret_assignment')}
jwt.expiration=3600
management.endpoints.web.exposure.include=health,info
''')

begin('misc/sql_migration.sql')
end(f'''-- create the reporting role
CREATE ROLE reporting LOGIN PASSWORD '{S(pw(), 'secret_assignment')}';
GRANT SELECT ON ALL TABLES IN SCHEMA public TO reporting;
ALTER USER app WITH PASSWORD '{S(pw(), 'secret_assignment')}';
CREATE USER 'legacy'@'%' IDENTIFIED BY '{S(pw(), 'secret_assignment')}';
-- checksum {sha256()}
''')

begin('misc/mixed_long.txt')
lines = []
for i in range(200):
    k = rng.randint(0, 9)
    if k < 6:
        lines.append(f'{ts()} INFO worker={rng.randint(1,9)} job={uid()} state=done took={rng.randint(1,900)}ms')
    elif k < 8:
        lines.append(f'{ts()} DEBUG cache miss key=product:{r(string.digits,6)} etag="{hexs(32)}"')
    else:
        lines.append(f'{ts()} INFO deploy {sha1()} image=sha256:{sha256()}')
lines.insert(57, f'{ts()} DEBUG config loaded: smtp_password={S(pw(), "secret_assignment")} smtp_host=smtp.acme.io')
lines.insert(143, f'{ts()} DEBUG calling https://api.openai.com with key {S(openai(), "openai_key")}')
end('\n'.join(lines) + '\n')

# ---------------------------------------------------------------- holdout (written after tuning)
begin('holdout/npmrc.txt')
end(f'''$ cat ~/.npmrc
registry=https://registry.npmjs.org/
//registry.npmjs.org/:_authToken={S(npm(), 'high_entropy')}
@acme:registry=https://npm.pkg.github.com/
//npm.pkg.github.com/:_authToken={S(gh(), 'github_token')}
always-auth=true
''')

begin('holdout/docker_config.json')
dauth = base64.b64encode(f"ci-bot:{pw()}".encode()).decode()
end(json.dumps({"auths": {"registry.acme.io": {"auth": S(dauth, 'secret_assignment')}, "https://index.docker.io/v1/": {}},
  "credsStore": "desktop", "currentContext": "default"}, indent=2) + '\n')

begin('holdout/form_body.txt')
end(f'''$ curl -s -X POST https://login.partner.net/oauth2/token \\
    --data 'grant_type=client_credentials&client_id={uid()}&client_secret={S(r(ALNUM + "~._-", 34), 'secret_assignment')}&scope=api.read'
{{"token_type":"Bearer","expires_in":3599,"access_token":"{S(jwt(), 'jwt')}"}}
''')

begin('holdout/python_repr.log')
end(f'''{ts()} DEBUG connect kwargs={{'host': 'db.internal', 'port': 5432, 'user': 'etl', 'password': '{S(pw(), 'secret_assignment')}', 'sslmode': 'require'}}
{ts()} INFO  rows copied: 182211
''')

begin('holdout/terraform.tfvars')
end(f'''region           = "eu-west-1"
instance_type    = "t3.medium"
db_password      = "{S(pw(), 'secret_assignment')}"
datadog_api_key  = "{S(hexs(32), 'secret_assignment')}"
datadog_app_key  = "{S(hexs(40), 'secret_assignment')}"
tags = {{ team = "payments", cost_center = "cc-{r(string.digits,4)}" }}
''')

begin('holdout/kubectl_literal.txt')
end(f'''$ kubectl -n shop create secret generic db --from-literal=username=shop --from-literal=password={S(pw(), 'secret_assignment')}
secret/db created
$ git clone https://oauth2:{S(glpat(), 'gitlab_token')}@gitlab.acme.io/platform/charts.git
Cloning into 'charts'...
''')

begin('holdout/sqlserver.config')
end(f'''<connectionStrings>
  <add name="Main" connectionString="Server=tcp:acme-sql.database.windows.net,1433;Database=orders;User ID=orders_app;Password={S(pw(), 'secret_assignment')};Encrypt=True;" />
</connectionStrings>
''')

begin('holdout/jwk.json')
end(json.dumps({"keys": [{"kty": "RSA", "kid": uid(), "use": "sig", "alg": "RS256", "n": b64url(256), "e": "AQAB",
  "d": S(b64url(256), 'private_key'), "p": S(b64url(128), 'private_key'), "q": S(b64url(128), 'private_key')}]}, indent=2) + '\n')

# holdout negatives
begin('holdout/neg_hmac_vectors.go')
end('''package hmac_test

// RFC 4231 test case 2: public test vectors, not secrets.
var rfc4231 = []struct{ key, data, want string }{
	{"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
		"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
}

// Key sizes in bytes.
const keyLen = 32
''')

begin('holdout/neg_requirements.txt')
end(f'''requests==2.32.3 \\
    --hash=sha256:{sha256()} \\
    --hash=sha256:{sha256()}
pyjwt==2.9.0 \\
    --hash=sha256:{sha256()}
python-keycloak==4.2.0 \\
    --hash=sha256:{sha256()}
''')

begin('holdout/neg_api_docs.md')
end('''## Authentication

Send your key in the `Authorization` header:

```bash
curl https://api.example.com/v1/items -H "Authorization: Bearer <YOUR_TOKEN>"
export OPENAI_API_KEY=sk-...
export STRIPE_SECRET_KEY=sk_live_your_key_here
```

Tokens expire after one hour; refresh them with `POST /v1/token` and your `refresh_token`.
Never commit your `client_secret`. The password must be at least 12 characters.
''')

begin('holdout/neg_sealed_secret.yaml')
end(f'''apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: db
spec:
  encryptedData:
    password: {'AgB' + r(B64, 420) + '=='}
    username: {'AgC' + r(B64, 300) + '=='}
''')

begin('holdout/neg_docker_build.log')
end(f'''#5 [internal] load metadata for docker.io/library/golang:1.26
#5 DONE 0.9s
#6 [builder 1/6] FROM docker.io/library/golang:1.26@sha256:{sha256()}
#6 resolve docker.io/library/golang:1.26@sha256:{sha256()} done
#9 [builder 4/6] RUN go mod download
#9 DONE 12.4s
#12 exporting layers
#12 writing image sha256:{sha256()} done
#12 naming to registry.acme.io/api:{sha1()[:12]} done
''')

begin('holdout/neg_session_log.log')
end(f'''{ts()} INFO auth: session {uid()} created for user {uid()} (mfa=true)
{ts()} INFO auth: token refreshed, expires_at={ts()} token_id={uid()}
{ts()} WARN auth: invalid password attempt 3/5 for user {uid()}
{ts()} INFO keys: rotated signing key kid={uid()} alg=ES256
{ts()} INFO secrets: loaded 14 secrets from vault path kv/data/payments (version {rng.randint(10,99)})
''')

begin('holdout/neg_readme_diff.diff')
end(f'''diff --git a/README.md b/README.md
index {hexs(7)}..{hexs(7)} 100644
--- a/README.md
+++ b/README.md
@@ -10,6 +10,9 @@
 ## Password reset
-Users can reset their password from the login page.
+Users can reset their password from the login page. The reset token is valid for 15 minutes
+and is sent by email; API keys are managed under Settings → Tokens.
+Set `AUTH_SECRET` in your environment (see `.env.example`).
''')

begin('holdout/neg_package_lock.json')
end(json.dumps({"name": "web", "lockfileVersion": 3, "packages": {
  "node_modules/jwt-decode": {"version": "4.0.0", "resolved": "https://registry.npmjs.org/jwt-decode/-/jwt-decode-4.0.0.tgz", "integrity": "sha512-" + b64(64)},
  "node_modules/keygrip": {"version": "1.1.0", "integrity": "sha512-" + b64(64)},
  "node_modules/passport": {"version": "0.7.0", "integrity": "sha512-" + b64(64)}}}, indent=2) + '\n')
