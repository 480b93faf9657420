-- Keys that sign a tenant's JWTs. A token is trusted for the tenant of the key named by its `kid`
-- only, and only for the roles listed here.
CREATE TABLE signing_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- HS256 or RS256.
    algorithm TEXT NOT NULL,
    -- HS256: the shared secret, which verification needs. RS256: empty.
    secret TEXT NOT NULL,
    -- RS256: the PEM public key. HS256: empty.
    public_key_pem TEXT NOT NULL,
    -- Comma-separated roles a token may carry.
    roles TEXT NOT NULL,
    -- Required `iss` and `aud` claims; empty when not required.
    issuer TEXT NOT NULL,
    audience TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retires_at BIGINT
);

CREATE INDEX signing_keys_by_tenant ON signing_keys (tenant_id, created_at);
