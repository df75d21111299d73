#!/usr/bin/env bash
# Everything here is safe: references, digests, ids.
export TOKEN=${TOKEN}
export API_KEY="$API_KEY"
export DB_PASSWORD=$(cat /run/secrets/db_password)
echo "$GITHUB_TOKEN" | gh auth login --with-token
docker login -u ci --password-stdin < /run/secrets/registry
curl -H "Authorization: Bearer $ACCESS_TOKEN" https://api.internal/v1/me
curl -H "Authorization: Bearer ${SERVICE_TOKEN}" https://api.internal/v1/jobs
git rev-parse HEAD   # be5df694238f0d4c66881678896aeda2e3d87bbc
sha256sum release.tar.gz  # 9d4eaff542efbee3156d7197be98b7a252a084c52c1cf605ecc231d37be4447c
uuidgen  # 0305c5d9-e11a-45e6-9130-d3444e296660
echo "request_id=4f20c8c6-eca3-484c-bf2d-79955573ab47 trace_id=47c69ffcc45a23f36ccd697ac0183356 span_id=023996aff1028b0b"
kubectl get secret db-credentials -o jsonpath='{.data.password}' | base64 -d > /dev/null
read -s -p "Password: " PASSWORD
export SECRET_KEY=${SECRET_KEY:-}
echo "token refresh ok for 4750c13a-b7bf-4fad-8cf5-e464f80f39b1"
