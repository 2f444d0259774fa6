-- Embedding cache: one vector per (model, hash of the embedded text); little-endian f32.
CREATE TABLE embeddings (
    model TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    dims BIGINT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, content_hash)
);
