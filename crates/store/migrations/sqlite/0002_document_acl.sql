-- Access lists and source versions for knowledge documents.
ALTER TABLE documents ADD COLUMN acl TEXT NOT NULL DEFAULT '["public"]';
ALTER TABLE documents ADD COLUMN source_version TEXT;
