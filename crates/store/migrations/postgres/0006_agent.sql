-- The agent's writes (idempotency record and audit trail), the local ticket store, and the
-- paused run of a procedure waiting for the customer.
CREATE TABLE actions (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    idempotency_key TEXT NOT NULL,
    conversation_id TEXT,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, idempotency_key)
);
CREATE INDEX actions_by_conversation ON actions (conversation_id, created_at);
CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    conversation_id TEXT,
    number TEXT NOT NULL,
    subject TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    comments TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (workspace_id, number)
);
CREATE INDEX tickets_by_customer ON tickets (customer_id, created_at);
CREATE TABLE agent_state (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
