-- Queries shared by both dialects. Placeholders are '?' and are rebound for PostgreSQL.
-- Every org-owned query names org_id: the store binds it from the transaction's scope, never from input.

-- name: OrgByID
SELECT id, name, max_timeout_seconds, created_at FROM orgs WHERE id = ?;

-- name: CountOrgs
SELECT count(*) FROM orgs;

-- name: CreateOrg
INSERT INTO orgs (id, name, max_timeout_seconds, created_at) VALUES (?, ?, ?, ?);

-- name: CreateUser
INSERT INTO users (org_id, id, email, name, password_hash, role, timezone, active, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: UserByID
SELECT org_id, id, email, name, password_hash, role, timezone, active, created_at
FROM users WHERE org_id = ? AND id = ?;

-- name: ListUsers
SELECT org_id, id, email, name, password_hash, role, timezone, active, created_at
FROM users WHERE org_id = ? ORDER BY email;

-- name: UserByEmail
SELECT org_id, id, email, name, password_hash, role, timezone, active, created_at
FROM users WHERE email = ?;

-- name: CreateDevice
INSERT INTO devices (org_id, id, name, token_hash, callback_key, created_at, revoked_at)
VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: DeviceByID
SELECT org_id, id, name, token_hash, callback_key, created_at, revoked_at
FROM devices WHERE org_id = ? AND id = ?;

-- name: DeviceByTokenHash
SELECT org_id, id, name, token_hash, callback_key, created_at, revoked_at
FROM devices WHERE token_hash = ?;

-- name: RevokeDevice
UPDATE devices SET revoked_at = ? WHERE org_id = ? AND id = ? AND revoked_at IS NULL;

-- name: CreateSession
INSERT INTO sessions (org_id, id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?);

-- name: SessionByHash
SELECT org_id, id_hash, user_id, created_at, expires_at FROM sessions WHERE id_hash = ?;

-- name: DeleteSession
DELETE FROM sessions WHERE org_id = ? AND id_hash = ?;

-- name: DeleteExpiredSessions
DELETE FROM sessions WHERE expires_at < ?;

-- name: InsertHandoff
INSERT INTO handoffs (org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed, callback_url, status, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: HandoffByID
SELECT org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed, callback_url, status, created_at, expires_at,
    decision_option, decided_by_kind, decided_by_id, decided_by_name, decision_channel, decision_comment, decided_at
FROM handoffs WHERE org_id = ? AND id = ?;

-- name: ListHandoffs
SELECT org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed, callback_url, status, created_at, expires_at,
    decision_option, decided_by_kind, decided_by_id, decided_by_name, decision_channel, decision_comment, decided_at
FROM handoffs WHERE org_id = ? AND (? = '' OR status = ?)
ORDER BY created_at DESC, id DESC LIMIT ?;

-- name: FinishHandoff
UPDATE handoffs
SET status = ?, decision_option = ?, decided_by_kind = ?, decided_by_id = ?, decided_by_name = ?,
    decision_channel = ?, decision_comment = ?, decided_at = ?
WHERE org_id = ? AND id = ? AND status = 'pending';

-- name: IdempotencyRecord
SELECT org_id, device_id, key, request_hash, handoff_id, created_at
FROM idempotency_keys WHERE org_id = ? AND device_id = ? AND key = ?;

-- name: PutIdempotencyRecord
INSERT INTO idempotency_keys (org_id, device_id, key, request_hash, handoff_id, created_at)
VALUES (?, ?, ?, ?, ?, ?);
