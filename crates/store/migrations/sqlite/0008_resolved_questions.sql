-- Resolved questions: past questions (imported tickets, questions answered with articles) and
-- the documents that answered them, by the documents' ids within their source.
CREATE TABLE resolved_questions (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    question_key TEXT NOT NULL,
    question TEXT NOT NULL,
    documents TEXT NOT NULL,
    origin TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, question_key)
);
