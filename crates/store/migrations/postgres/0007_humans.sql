-- The human side: people in the console, their sessions, who owns each conversation (queue,
-- priority, owner and lease), the handoff records, and the facts the outcome report reads.
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    teams TEXT NOT NULL,
    skills TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    available BOOLEAN NOT NULL,
    last_seen_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (workspace_id, email)
);
CREATE TABLE agent_sessions (
    prefix TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
ALTER TABLE conversations ADD COLUMN team TEXT;
ALTER TABLE conversations ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
ALTER TABLE conversations ADD COLUMN owner_agent_id TEXT REFERENCES agents(id);
ALTER TABLE conversations ADD COLUMN lease_until BIGINT;
ALTER TABLE conversations ADD COLUMN queued_at BIGINT;
ALTER TABLE conversations ADD COLUMN intent TEXT;
ALTER TABLE conversations ADD COLUMN last_customer_at BIGINT;
ALTER TABLE conversations ADD COLUMN first_response_at BIGINT;
ALTER TABLE conversations ADD COLUMN handed_off_at BIGINT;
ALTER TABLE conversations ADD COLUMN resolved_at BIGINT;
ALTER TABLE conversations ADD COLUMN resolution TEXT;
ALTER TABLE conversations ADD COLUMN reopened BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE conversations ADD COLUMN rating BIGINT;
CREATE INDEX conversations_owner ON conversations (owner_agent_id, status);
CREATE INDEX conversations_leases ON conversations (status, lease_until);
CREATE INDEX conversations_created ON conversations (workspace_id, created_at);
ALTER TABLE messages ADD COLUMN sender TEXT;
CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    team TEXT,
    record TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    claimed_at BIGINT,
    claimed_by TEXT REFERENCES agents(id),
    resolved_by TEXT REFERENCES agents(id)
);
CREATE UNIQUE INDEX handoffs_by_conversation ON handoffs (conversation_id, created_at);
CREATE INDEX handoffs_by_workspace ON handoffs (workspace_id, created_at);
