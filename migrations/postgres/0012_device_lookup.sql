-- Every agent request resolves its device token. This function lets it do so in one statement outside
-- any transaction: it takes the system scope for its own query and puts back what the caller had, so
-- the lookup is one round trip instead of a read-only transaction's four (begin, scope, select, commit).
CREATE FUNCTION ony_device_by_token(hash bytea) RETURNS SETOF devices
LANGUAGE plpgsql AS $$
DECLARE
    prev text := coalesce(current_setting('ony.scope', true), '');
BEGIN
    PERFORM set_config('ony.scope', 'system', true);
    RETURN QUERY SELECT * FROM devices WHERE token_hash = hash;
    PERFORM set_config('ony.scope', prev, true);
END
$$;
