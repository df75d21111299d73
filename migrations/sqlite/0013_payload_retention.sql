-- Payload retention (issue 17): the daily sweep finds an org's final handoffs that still carry a
-- payload, oldest first. Only those rows are in the index (a pending handoff enters it when it ends, a
-- scrubbed one leaves it), so the sweep and its dry run read what they scrub and no more, however many
-- handoffs the org keeps. The predicate is the queries' own, word for word, so both databases use it.
CREATE INDEX handoffs_payload_retention ON handoffs (org_id, created_at)
    WHERE payload_sealed IS NOT NULL AND status <> 'pending';
