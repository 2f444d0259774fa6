-- Times are microseconds since the Unix epoch (UTC); ids are UUID text; JSON is text.
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    public_chat BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name TEXT,
    email TEXT,
    phone TEXT,
    tier TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE customer_identities (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    PRIMARY KEY (workspace_id, channel, external_id)
);

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    number TEXT NOT NULL,
    status TEXT NOT NULL,
    placed_at BIGINT NOT NULL,
    currency TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    details TEXT NOT NULL,
    UNIQUE (workspace_id, number)
);
CREATE INDEX orders_customer ON orders (customer_id, placed_at);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    subject TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- Sequence of the last event; bumping it serializes appends to one conversation.
    last_seq BIGINT NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    idempotency_fingerprint TEXT,
    UNIQUE (workspace_id, idempotency_key)
);
CREATE INDEX conversations_list ON conversations (workspace_id, status, id);
CREATE INDEX conversations_list_all ON conversations (workspace_id, id);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    position BIGINT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    citations TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    idempotency_key TEXT,
    idempotency_fingerprint TEXT,
    UNIQUE (conversation_id, idempotency_key)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, position);

CREATE TABLE events (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE turns (
    id BIGSERIAL PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    message_id TEXT NOT NULL REFERENCES messages(id),
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX turns_queue ON turns (status, id);
CREATE INDEX turns_conversation ON turns (conversation_id, status);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT,
    tags TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (workspace_id, source, external_id)
);

CREATE TABLE chunks (
    id TEXT PRIMARY KEY,
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal BIGINT NOT NULL,
    heading_path TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX chunks_by_document ON chunks (document_id, ordinal);
