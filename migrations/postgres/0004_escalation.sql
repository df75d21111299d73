-- Escalation: people's contact settings, versioned ladders, the ladder frozen onto each handoff, one
-- row per notification sent (the idempotency key of a retried job), and single-use decision tokens for
-- channels that have no session (chat buttons, SMS replies, calls).

ALTER TABLE users ADD COLUMN phone       text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN slack_id    text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN telegram_id text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN quiet_hours text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN groups      text NOT NULL DEFAULT '[]';

-- A handoff keeps the ladder it was created under, so editing a ladder never changes one in flight.
ALTER TABLE handoffs ADD COLUMN ladder_name    text    NOT NULL DEFAULT '';
ALTER TABLE handoffs ADD COLUMN ladder_version integer NOT NULL DEFAULT 0;
ALTER TABLE handoffs ADD COLUMN ladder         text    NOT NULL DEFAULT '';

-- Versions are never edited: a change is a new version, so a frozen (name, version) stays meaningful.
CREATE TABLE ladders (
    org_id     text        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    version    integer     NOT NULL CHECK (version > 0),
    source     bytea       NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, name, version)
);

CREATE TABLE escalation_sends (
    org_id     text        NOT NULL,
    handoff_id text        NOT NULL,
    key        text        NOT NULL,
    climb      integer     NOT NULL,
    step       integer     NOT NULL,
    attempt    integer     NOT NULL,
    channel    text        NOT NULL,
    target     text        NOT NULL,
    provider   text        NOT NULL DEFAULT '',
    state      text        NOT NULL CHECK (state IN ('sending', 'sent', 'delivered', 'answered', 'no_answer', 'busy',
                                                     'failed', 'capped', 'quiet', 'skipped', 'step')),
    ref        text        NOT NULL DEFAULT '',
    detail     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, handoff_id, key),
    FOREIGN KEY (org_id, handoff_id) REFERENCES handoffs (org_id, id) ON DELETE CASCADE
);
-- The console inbox: which handoffs a person was notified of.
CREATE INDEX escalation_sends_inbox ON escalation_sends (org_id, channel, target, handoff_id);

CREATE TABLE decision_tokens (
    org_id     text        NOT NULL,
    hash       bytea       NOT NULL PRIMARY KEY,
    handoff_id text        NOT NULL,
    user_id    text        NOT NULL,
    channel    text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    FOREIGN KEY (org_id, handoff_id) REFERENCES handoffs (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX decision_tokens_handoff ON decision_tokens (org_id, handoff_id);
CREATE INDEX decision_tokens_user ON decision_tokens (org_id, user_id);

-- Erasure deletes none of these itself: they cascade from orgs, handoffs and users, and the cascades
-- run as the tables' owner, so the runtime role needs no DELETE here (see store/postgres).
ALTER TABLE ladders ENABLE ROW LEVEL SECURITY;
ALTER TABLE ladders FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON ladders
    USING (org_id = current_setting('ony.org_id', true))
    WITH CHECK (org_id = current_setting('ony.org_id', true));

ALTER TABLE escalation_sends ENABLE ROW LEVEL SECURITY;
ALTER TABLE escalation_sends FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON escalation_sends
    USING (org_id = current_setting('ony.org_id', true))
    WITH CHECK (org_id = current_setting('ony.org_id', true));

-- A token arrives before its org is known (DecisionTokenByHash), so the system scope may read it; only
-- the org itself may write one.
ALTER TABLE decision_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE decision_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY org_scope ON decision_tokens
    USING (org_id = current_setting('ony.org_id', true) OR current_setting('ony.scope', true) = 'system')
    WITH CHECK (org_id = current_setting('ony.org_id', true));
