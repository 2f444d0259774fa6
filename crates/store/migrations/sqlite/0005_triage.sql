-- Triage and routing stored with each customer message; workspace settings (intents, routing
-- policy) and the models trained from them.
ALTER TABLE messages ADD COLUMN analysis TEXT;
CREATE TABLE workspace_settings (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
CREATE TABLE workspace_models (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    data TEXT NOT NULL,
    trained_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, kind)
);
