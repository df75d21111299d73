-- The gist: the short, secret-free text that channels carry, written by the redactor (and refined by
-- the optional summarizer).
ALTER TABLE handoffs ADD COLUMN gist text NOT NULL DEFAULT '';
