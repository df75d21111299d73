-- Every console page and every decision a person makes resolves their session, with the person's
-- name, role and whether they are active. As with ony_device_by_token (0012), this function takes the
-- system scope for its own query and puts back what the caller had, so the lookup is one round trip
-- instead of two read-only transactions (the session, then the person).
CREATE FUNCTION ony_session_by_token(hash bytea) RETURNS TABLE (
    org_id text, id_hash bytea, user_id text, created_at timestamptz, expires_at timestamptz,
    public_id text, last_seen_at timestamptz, user_agent text,
    user_name text, user_role text, user_active boolean)
LANGUAGE plpgsql AS $$
DECLARE
    prev text := coalesce(current_setting('ony.scope', true), '');
BEGIN
    PERFORM set_config('ony.scope', 'system', true);
    RETURN QUERY SELECT s.org_id, s.id_hash, s.user_id, s.created_at, s.expires_at, s.public_id,
        s.last_seen_at, s.user_agent, u.name, u.role, u.active
    FROM sessions s JOIN users u ON u.org_id = s.org_id AND u.id = s.user_id
    WHERE s.id_hash = hash;
    PERFORM set_config('ony.scope', prev, true);
END
$$;
