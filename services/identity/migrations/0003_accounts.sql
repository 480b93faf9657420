-- Staff accounts (agents and admins who sign in to the workspace; the id is the agent's id in
-- routing) and their sessions. Passwords are kept only as argon2id hashes, sessions only as
-- SHA-256 hashes of their secrets.
CREATE TABLE accounts (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    language TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    -- 1 when the account may not sign in.
    disabled BIGINT NOT NULL,
    password_hash TEXT NOT NULL,
    failed_attempts BIGINT NOT NULL,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE UNIQUE INDEX accounts_by_email ON accounts (tenant_id, email);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX sessions_by_account ON sessions (tenant_id, account_id);
