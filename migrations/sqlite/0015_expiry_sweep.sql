-- The expiry sweep (issue 12) replaces one scheduled job per handoff: every second it ends the pending
-- handoffs whose expires_at has passed, earliest first. Only pending handoffs are in the index (one
-- leaves it when it ends), so the sweep reads what it expires and no more, however many handoffs are
-- kept. The predicate is the query's own (DueHandoffs), word for word, so the planner uses it.
CREATE INDEX handoffs_pending_expiry ON handoffs (expires_at) WHERE status = 'pending';
