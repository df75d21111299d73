-- Queries shared by both dialects. Placeholders are '?' and are rebound for PostgreSQL.
-- Every org-owned query names org_id: the store binds it from the transaction's scope, never from input.

-- name: OrgByID
-- The last column says whether the org has stored ladders: most have none, and a create reads the org
-- and then its ladders (orgTx.Ladders skips that read).
SELECT id, name, max_timeout_seconds, created_at, stepup_risks, payload_retention_days,
    EXISTS (SELECT 1 FROM ladders WHERE ladders.org_id = orgs.id)
FROM orgs WHERE id = ?;

-- name: LockOrg
SELECT id, name, max_timeout_seconds, created_at, stepup_risks, payload_retention_days FROM orgs WHERE id = ? /*FOR UPDATE*/;

-- name: CountOrgs
SELECT count(*) FROM orgs;

-- name: CreateOrg
INSERT INTO orgs (id, name, max_timeout_seconds, created_at) VALUES (?, ?, ?, ?);

-- name: CreateUser
INSERT INTO users (org_id, id, email, name, password_hash, role, timezone, active, created_at,
    quiet_hours, groups)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: UpdateUser
UPDATE users SET name = ?, role = ?, timezone = ?, active = ?, quiet_hours = ?, groups = ?
WHERE org_id = ? AND id = ?;

-- name: SetPasswordHash
UPDATE users SET password_hash = ? WHERE org_id = ? AND id = ?;

-- name: UserByID
SELECT org_id, id, email, name, password_hash, role, timezone, active, created_at, quiet_hours, groups,
    last_active_at
FROM users WHERE org_id = ? AND id = ?;

-- name: ListUsers
-- Each user with its contacts, a row per contact (one of NULLs for a user without any): every rung
-- that reaches people lists them, and one statement is one round trip.
SELECT u.org_id, u.id, u.email, u.name, u.password_hash, u.role, u.timezone, u.active, u.created_at, u.quiet_hours,
    u.groups, u.last_active_at, c.kind, c.address, c.verified_at, c.created_at
FROM users u LEFT JOIN user_contacts c ON c.org_id = u.org_id AND c.user_id = u.id
WHERE u.org_id = ? ORDER BY u.email, u.id, c.kind;

-- name: UserByEmail
SELECT org_id, id, email, name, password_hash, role, timezone, active, created_at, quiet_hours, groups,
    last_active_at
FROM users WHERE email = ?;

-- name: UserContacts
SELECT org_id, user_id, kind, address, verified_at, created_at
FROM user_contacts WHERE org_id = ? AND user_id = ? ORDER BY kind;

-- name: SetContact
INSERT INTO user_contacts (org_id, user_id, kind, address, verified_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (org_id, user_id, kind) DO UPDATE
SET address = excluded.address, verified_at = excluded.verified_at, created_at = excluded.created_at;

-- name: DeleteContact
DELETE FROM user_contacts WHERE org_id = ? AND user_id = ? AND kind = ?;

-- name: CreateDevice
INSERT INTO devices (org_id, id, name, token_hash, callback_key, created_at, revoked_at)
VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: DeviceByID
SELECT org_id, id, name, token_hash, callback_key, created_at, revoked_at, last_used_at
FROM devices WHERE org_id = ? AND id = ?;

-- name: DeviceByTokenHash
SELECT org_id, id, name, token_hash, callback_key, created_at, revoked_at, last_used_at
FROM devices WHERE token_hash = ?;

-- name: ListDevices
SELECT org_id, id, name, token_hash, callback_key, created_at, revoked_at, last_used_at
FROM devices WHERE org_id = ? ORDER BY created_at, id;

-- name: TouchDevice
UPDATE devices SET last_used_at = ? WHERE org_id = ? AND id = ?;

-- name: RevokeDevice
UPDATE devices SET revoked_at = ? WHERE org_id = ? AND id = ? AND revoked_at IS NULL;

-- name: CreateSession
INSERT INTO sessions (org_id, id_hash, user_id, created_at, expires_at, public_id, last_seen_at, user_agent)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: SessionByTokenHash
SELECT s.org_id, s.id_hash, s.user_id, s.created_at, s.expires_at, s.public_id, s.last_seen_at, s.user_agent,
    u.name, u.role, u.active
FROM sessions s JOIN users u ON u.org_id = s.org_id AND u.id = s.user_id WHERE s.id_hash = ?;

-- name: DeleteSession
DELETE FROM sessions WHERE org_id = ? AND id_hash = ?;

-- name: DeleteUserSessions
DELETE FROM sessions WHERE org_id = ? AND user_id = ? AND id_hash <> ?;

-- name: DeleteExpiredSessions
DELETE FROM sessions WHERE expires_at < ?;

-- name: InsertHandoff
INSERT INTO handoffs (org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed, callback_url, status, created_at, expires_at, gist,
    ladder_name, ladder_version, ladder)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: HandoffByID
SELECT org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed IS NOT NULL, callback_url, status, created_at, expires_at,
    decision_option, decided_by_kind, decided_by_id, decided_by_name, decision_channel, decision_comment, decided_at, gist,
    ladder_name, ladder_version, ladder
FROM handoffs WHERE org_id = ? AND id = ?;

-- name: HandoffPayload
-- The other reads of handoffs select only whether there is a payload (payload_sealed IS NOT NULL): it
-- can be a megabyte, and only the console's handoff page and the summarizer open it.
SELECT payload_sealed FROM handoffs WHERE org_id = ? AND id = ?;

-- name: HandoffWithAgent
-- HandoffByID and the name of the device that asked for it ('' if it has none or it is gone), for the
-- escalation jobs, which put the agent's name in every notification.
SELECT h.org_id, h.id, h.device_id, h.action, h.title, h.summary, h.risk, h.risk_reasons, h.options, h.labels,
    h.payload_kind, h.payload_size, h.payload_sealed IS NOT NULL, h.callback_url, h.status, h.created_at, h.expires_at,
    h.decision_option, h.decided_by_kind, h.decided_by_id, h.decided_by_name, h.decision_channel, h.decision_comment,
    h.decided_at, h.gist, h.ladder_name, h.ladder_version, h.ladder, COALESCE(d.name, '')
FROM handoffs h LEFT JOIN devices d ON d.org_id = h.org_id AND d.id = h.device_id
WHERE h.org_id = ? AND h.id = ?;

-- name: ListHandoffs
SELECT org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed IS NOT NULL, callback_url, status, created_at, expires_at,
    decision_option, decided_by_kind, decided_by_id, decided_by_name, decision_channel, decision_comment, decided_at, gist,
    ladder_name, ladder_version, ladder
FROM handoffs WHERE org_id = ?
ORDER BY created_at DESC, id DESC LIMIT ?;

-- ListHandoffs comes in one query per filter, each fitting its own index in the list's order: a
-- "(? = '' OR status = ?)" filter would fit none of them.

-- name: ListHandoffsByStatus
SELECT org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed IS NOT NULL, callback_url, status, created_at, expires_at,
    decision_option, decided_by_kind, decided_by_id, decided_by_name, decision_channel, decision_comment, decided_at, gist,
    ladder_name, ladder_version, ladder
FROM handoffs WHERE org_id = ? AND status = ?
ORDER BY created_at DESC, id DESC LIMIT ?;

-- name: ListHandoffsByDevice
SELECT org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed IS NOT NULL, callback_url, status, created_at, expires_at,
    decision_option, decided_by_kind, decided_by_id, decided_by_name, decision_channel, decision_comment, decided_at, gist,
    ladder_name, ladder_version, ladder
FROM handoffs WHERE org_id = ? AND device_id = ?
ORDER BY created_at DESC, id DESC LIMIT ?;

-- name: ListHandoffsByDeviceStatus
SELECT org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed IS NOT NULL, callback_url, status, created_at, expires_at,
    decision_option, decided_by_kind, decided_by_id, decided_by_name, decision_channel, decision_comment, decided_at, gist,
    ladder_name, ladder_version, ladder
FROM handoffs WHERE org_id = ? AND device_id = ? AND status = ?
ORDER BY created_at DESC, id DESC LIMIT ?;

-- name: FinishHandoff
-- "(status = 'pending') IS TRUE" (status is NOT NULL, so the same test) is no index condition: with
-- stale statistics PostgreSQL otherwise took the (org_id, status) index and read every pending handoff
-- of the org to decide one (issue 12); the key is the only index left for it.
UPDATE handoffs
SET status = ?, decision_option = ?, decided_by_kind = ?, decided_by_id = ?, decided_by_name = ?,
    decision_channel = ?, decision_comment = ?, decided_at = ?
WHERE org_id = ? AND id = ? AND (status = 'pending') IS TRUE;

-- name: SetHandoffGist
UPDATE handoffs SET gist = ? WHERE org_id = ? AND id = ?;

-- name: Inbox
-- EXISTS, not a join: a person notified several times (steps, attempts, climbs) sees the handoff once.
SELECT org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels,
    payload_kind, payload_size, payload_sealed IS NOT NULL, callback_url, status, created_at, expires_at,
    decision_option, decided_by_kind, decided_by_id, decided_by_name, decision_channel, decision_comment, decided_at, gist,
    ladder_name, ladder_version, ladder
FROM handoffs h
WHERE h.org_id = ? AND h.status = 'pending' AND EXISTS (
    SELECT 1 FROM escalation_sends s
    WHERE s.org_id = h.org_id AND s.channel = 'console' AND s.target = ? AND s.handoff_id = h.id AND s.state <> 'step')
ORDER BY h.created_at DESC, h.id DESC LIMIT ?;

-- name: PutLadder
INSERT INTO ladders (org_id, name, version, source, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?);

-- name: Ladders
SELECT org_id, name, version, source, created_by, created_at FROM ladders l
WHERE l.org_id = ? AND l.version = (SELECT max(m.version) FROM ladders m WHERE m.org_id = l.org_id AND m.name = l.name)
ORDER BY l.name;

-- name: LadderByName
SELECT org_id, name, version, source, created_by, created_at FROM ladders
WHERE org_id = ? AND name = ? ORDER BY version DESC LIMIT 1;

-- name: LadderVersions
SELECT org_id, name, version, source, created_by, created_at FROM ladders
WHERE org_id = ? AND name = ? ORDER BY version DESC;

-- name: ClaimSend
-- DO NOTHING makes a concurrent second claim wait for the first and then insert nothing, on both databases.
INSERT INTO escalation_sends (org_id, handoff_id, key, climb, step, attempt, channel, target, provider, state,
    ref, detail, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (org_id, handoff_id, key) DO NOTHING;

-- name: ClaimSends
-- ClaimSends appends a row of placeholders per further send, then ON CONFLICT (org_id, handoff_id,
-- key) DO NOTHING RETURNING key: one statement claims a rung's marker and its sends.
INSERT INTO escalation_sends (org_id, handoff_id, key, climb, step, attempt, channel, target, provider, state,
    ref, detail, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: SendByKey
SELECT org_id, handoff_id, key, climb, step, attempt, channel, target, provider, state, ref, detail, created_at, updated_at
FROM escalation_sends WHERE org_id = ? AND handoff_id = ? AND key = ?;

-- name: SendByRef
-- LIMIT 2: a reference that is not unique must be told apart from one that is.
SELECT org_id, handoff_id, key, climb, step, attempt, channel, target, provider, state, ref, detail, created_at, updated_at
FROM escalation_sends WHERE provider = ? AND ref = ? AND ref <> '' LIMIT 2;

-- name: SetSendState
-- SetSendState appends "AND state IN (...)" when the caller names the states it moves from. An empty
-- provider, ref or detail keeps what an earlier update recorded (a delivery receipt knows no ref).
UPDATE escalation_sends
SET state = ?, provider = COALESCE(NULLIF(?, ''), provider), ref = COALESCE(NULLIF(?, ''), ref),
    detail = COALESCE(NULLIF(?, ''), detail), updated_at = ?
WHERE org_id = ? AND handoff_id = ? AND key = ?

-- name: ListSends
SELECT org_id, handoff_id, key, climb, step, attempt, channel, target, provider, state, ref, detail, created_at, updated_at
FROM escalation_sends WHERE org_id = ? AND handoff_id = ? ORDER BY created_at, key;

-- name: CreateDecisionToken
INSERT INTO decision_tokens (org_id, hash, handoff_id, user_id, target, channel, created_at, expires_at, used_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: UseDecisionToken
-- IS TRUE, as in FinishHandoff: with stale statistics decision_tokens_open looked cheaper than the key.
UPDATE decision_tokens SET used_at = ? WHERE org_id = ? AND hash = ? AND (used_at IS NULL) IS TRUE AND expires_at > ?;

-- name: DecisionTokenByHash
SELECT org_id, hash, handoff_id, user_id, target, channel, created_at, expires_at, used_at FROM decision_tokens WHERE hash = ?;

-- name: OpenDecisionTokensTo
SELECT t.org_id, t.hash, t.handoff_id, t.user_id, t.target, t.channel, t.created_at, t.expires_at, t.used_at
FROM decision_tokens t JOIN user_contacts c ON c.org_id = t.org_id AND c.user_id = t.user_id
WHERE c.kind = ? AND c.address = ? AND t.channel = ? AND t.used_at IS NULL AND t.expires_at > ?
ORDER BY t.created_at, t.hash LIMIT 100;

-- name: IdempotencyRecord
SELECT org_id, device_id, key, request_hash, handoff_id, created_at
FROM idempotency_keys WHERE org_id = ? AND device_id = ? AND key = ?;

-- name: PutIdempotencyRecord
INSERT INTO idempotency_keys (org_id, device_id, key, request_hash, handoff_id, created_at)
VALUES (?, ?, ?, ?, ?, ?);

-- name: AuditInitHead
INSERT INTO audit_heads (org_id, size, root, updated_at) VALUES (?, 0, ?, ?) ON CONFLICT (org_id) DO NOTHING;

-- name: AuditLockHead
SELECT size, root, updated_at, sealed_at, frontier FROM audit_heads WHERE org_id = ? /*FOR UPDATE*/;

-- name: AuditHead
SELECT size, root, updated_at, sealed_at, frontier FROM audit_heads WHERE org_id = ?;

-- Queued, unsequenced records (migration 0010). The multi-row statements below are extended at run
-- time with one more "(?, …)" per row.

-- name: AuditEnqueue
INSERT INTO audit_queue (org_id, data, created_at) VALUES (?, ?, ?);

-- name: AuditEnqueueOne
INSERT INTO audit_queue (org_id, data, created_at)
SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM audit_heads WHERE org_id = ? AND sealed_at IS NOT NULL);

-- name: AuditSealed
SELECT count(*) FROM audit_heads WHERE org_id = ? AND sealed_at IS NOT NULL;

-- name: AuditQueued
SELECT id, data, created_at FROM audit_queue WHERE org_id = ? AND id > ? ORDER BY id LIMIT ?;

-- name: AuditDequeue
DELETE FROM audit_queue WHERE org_id = ? AND id IN (?;

-- name: AuditQueuedLogIDs
SELECT DISTINCT org_id FROM audit_queue ORDER BY org_id;

-- name: AuditSeal
UPDATE audit_heads SET sealed_at = ? WHERE org_id = ? AND sealed_at IS NULL;

-- name: AuditCheckpoints
SELECT size, note, created_at FROM audit_checkpoints WHERE org_id = ? AND size >= ? ORDER BY size LIMIT ?;

-- name: AuditInsertBundles
INSERT INTO audit_bundles (org_id, idx, n, data) VALUES (?, ?, ?, ?);

-- A partial bundle grows by the leaves appended after the n the sequencer counted from the head; the
-- guards (migration 0017, SQLite 0016) allow nothing else.
-- name: AuditExtendBundle
UPDATE audit_bundles SET data = data || ?, n = ? WHERE org_id = ? AND idx = ? AND n = ?;

-- name: AuditInsertTiles
INSERT INTO audit_tiles (org_id, level, idx, data) VALUES (?, ?, ?, ?);

-- A partial tile grows by the hashes appended after the length the sequencer read from the frontier;
-- the guards (migration 0014) allow nothing else.
-- name: AuditExtendTile
UPDATE audit_tiles SET data = data || ? WHERE org_id = ? AND level = ? AND idx = ? AND length(data) = ?;

-- name: AuditTilesByKey
SELECT level, idx, data FROM audit_tiles WHERE org_id = ? AND (level, idx) IN ((?, ?);

-- name: AuditTileRange
SELECT idx, data FROM audit_tiles WHERE org_id = ? AND level = ? AND idx >= ? AND idx <= ? ORDER BY idx;

-- name: AuditUpdateHead
UPDATE audit_heads SET size = ?, root = ?, frontier = ?, updated_at = ? WHERE org_id = ? AND size = ? AND sealed_at IS NULL;

-- name: AuditBundleRange
SELECT idx, data FROM audit_bundles WHERE org_id = ? AND idx >= ? AND idx <= ? ORDER BY idx;

-- name: AuditPutCheckpoint
INSERT INTO audit_checkpoints (org_id, size, note, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (org_id, size) DO NOTHING;

-- name: AuditLatestCheckpoint
SELECT size, note, created_at FROM audit_checkpoints WHERE org_id = ? ORDER BY size DESC LIMIT 1;

-- name: AuditHandoffStates
-- Every handoff of the organization, from handoffs_org_status_created alone: verification holds them
-- all and needs no order. A row per status, its ids joined by commas: a row of the driver costs more
-- than the id it carries (modernc's SQLite read 20,000 of them in 16.6 ms as rows, 5.6 ms joined).
SELECT status, count(*), string_agg(id, ',') FROM handoffs WHERE org_id = ? GROUP BY status;

-- name: OrgIDs
SELECT id FROM orgs ORDER BY id;

-- name: DueHandoffs
-- The expiry sweep (issue 12): pending handoffs past their deadline in every organization, through
-- the partial index of migration 0015, whose predicate is this query's own.
SELECT org_id, id FROM handoffs WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?;

-- name: AuditLogIDs
SELECT org_id FROM audit_heads ORDER BY org_id;

-- identity (issue 13)

-- name: CreateCode
INSERT INTO one_time_codes (org_id, id, purpose, email, user_id, role, code_hash, created_by, created_at, expires_at, used_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: UseCode
UPDATE one_time_codes SET used_at = ? WHERE org_id = ? AND id = ? AND used_at IS NULL AND expires_at > ?;

-- name: SupersedeCodes
UPDATE one_time_codes SET used_at = ? WHERE org_id = ? AND purpose = ? AND email = ? AND used_at IS NULL;

-- name: CodeByHash
SELECT org_id, id, purpose, email, user_id, role, code_hash, created_by, created_at, expires_at, used_at
FROM one_time_codes WHERE code_hash = ?;

-- name: OpenCodeByEmail
SELECT org_id, id, purpose, email, user_id, role, code_hash, created_by, created_at, expires_at, used_at
FROM one_time_codes WHERE purpose = ? AND email = ? AND used_at IS NULL AND expires_at > ?
ORDER BY created_at DESC, id LIMIT 1;

-- name: UpdateOrgSettings
UPDATE orgs SET stepup_risks = ?, payload_retention_days = ? WHERE id = ?;

-- name: TouchUser
UPDATE users SET last_active_at = ? WHERE org_id = ? AND id = ?;

-- totp & sessions (issue 13)

-- name: UserSessions
SELECT org_id, id_hash, user_id, created_at, expires_at, public_id, last_seen_at, user_agent
FROM sessions WHERE org_id = ? AND user_id = ? ORDER BY created_at DESC, public_id;

-- name: DeleteUserSession
DELETE FROM sessions WHERE org_id = ? AND user_id = ? AND public_id = ?;

-- name: TouchSession
UPDATE sessions SET last_seen_at = ? WHERE org_id = ? AND id_hash = ?;

-- name: UserTOTP
SELECT org_id, user_id, secret, confirmed_at, last_step, created_at FROM user_totp WHERE org_id = ? AND user_id = ?;

-- name: ListUserTOTP
SELECT org_id, user_id, secret, confirmed_at, last_step, created_at FROM user_totp WHERE org_id = ? ORDER BY user_id;

-- name: PutPendingTOTP
-- Replaces only an unconfirmed row: a confirmed secret is changed by disabling it first.
INSERT INTO user_totp (org_id, user_id, secret, confirmed_at, last_step, created_at) VALUES (?, ?, ?, NULL, 0, ?)
ON CONFLICT (org_id, user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_step = 0
WHERE user_totp.confirmed_at IS NULL;

-- name: ConfirmTOTP
UPDATE user_totp SET confirmed_at = ?, last_step = ?
WHERE org_id = ? AND user_id = ? AND confirmed_at IS NULL AND last_step < ?;

-- name: UseTOTPStep
-- The conditional write is the replay guard: of two requests with the same code, one updates a row.
UPDATE user_totp SET last_step = ? WHERE org_id = ? AND user_id = ? AND confirmed_at IS NOT NULL AND last_step < ?;

-- name: SetTOTPSecret
UPDATE user_totp SET secret = ? WHERE org_id = ? AND user_id = ?;

-- name: DeleteUserTOTP
DELETE FROM user_totp WHERE org_id = ? AND user_id = ?;

-- name: CreateLoginChallenge
INSERT INTO login_challenges (org_id, id_hash, user_id, expires_at, attempts) VALUES (?, ?, ?, ?, ?);

-- name: CountChallengeAttempt
UPDATE login_challenges SET attempts = attempts + 1 WHERE org_id = ? AND id_hash = ? AND attempts < ?;

-- name: DeleteLoginChallenge
DELETE FROM login_challenges WHERE org_id = ? AND id_hash = ?;

-- name: LoginChallengeByHash
SELECT org_id, id_hash, user_id, expires_at, attempts FROM login_challenges WHERE id_hash = ?;

-- name: DeleteExpiredChallenges
DELETE FROM login_challenges WHERE expires_at < ?;

-- Chat (issue 14).

-- name: UserByContact
SELECT u.org_id, u.id, u.email, u.name, u.password_hash, u.role, u.timezone, u.active, u.created_at, u.quiet_hours,
    u.groups, u.last_active_at
FROM user_contacts c JOIN users u ON u.org_id = c.org_id AND u.id = c.user_id
WHERE c.org_id = ? AND c.kind = ? AND c.address = ? ORDER BY u.id LIMIT 2;

-- name: SupersedeLinkCodes
UPDATE link_codes SET used_at = ? WHERE org_id = ? AND user_id = ? AND kind = ? AND used_at IS NULL;

-- name: CreateLinkCode
INSERT INTO link_codes (org_id, code_hash, user_id, kind, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: UseLinkCode
UPDATE link_codes SET used_at = ? WHERE org_id = ? AND code_hash = ? AND used_at IS NULL AND expires_at > ?;

-- name: LinkCodeByHash
SELECT org_id, code_hash, user_id, kind, created_at, expires_at, used_at FROM link_codes WHERE code_hash = ?;

-- Payload retention (issue 17). A final handoff created before the window loses its sealed payload;
-- kind and size stay, so the console can say it was removed. The partial index (migration 0013) holds
-- only final handoffs that still have a payload, and its predicate must stay these queries' own terms
-- for either database to use it; a scrubbed row leaves it. The subquery's LIMIT bounds one statement.

-- name: ScrubbablePayloads
SELECT id FROM handoffs
WHERE org_id = ? AND payload_sealed IS NOT NULL AND created_at < ? AND status <> 'pending'
ORDER BY created_at LIMIT ?;

-- name: ScrubPayloads
-- Extended at run time with one "?" per id ScrubbablePayloads found in the same transaction, as
-- AuditDequeue is: by key, because "id IN (SELECT … LIMIT ?)" made PostgreSQL hash-join the org's
-- whole table against the batch. The conditions are repeated so the count is of rows it scrubbed.
UPDATE handoffs SET payload_sealed = NULL
WHERE org_id = ? AND payload_sealed IS NOT NULL AND status <> 'pending' AND id IN (?;

-- name: CountScrubbablePayloads
SELECT count(*) FROM handoffs
WHERE org_id = ? AND payload_sealed IS NOT NULL AND created_at < ? AND status <> 'pending';

-- name: CancelJob
-- River's table is not the org's, so the org is matched in the job's arguments; ->> reads a top-level
-- key in both dialects. A job that is running is its worker's to finish.
DELETE FROM river_job WHERE id = ? AND args ->> 'org_id' = ? AND state IN ('available', 'scheduled', 'retryable');
