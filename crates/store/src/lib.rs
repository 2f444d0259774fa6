//! SQLite and PostgreSQL behind the core [`Store`] trait.
//!
//! One implementation serves both backends: every query is written once in SQL both accept
//! (`$n` placeholders, `RETURNING`, `ON CONFLICT`) and run through [`on_pool!`], which
//! type-checks the same body against each driver. Columns hold only primitive types (UUIDs as
//! text, times as microseconds, JSON as text) so rows decode identically on both.
//!
//! Architecture invariant: nothing outside this crate writes SQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use concierge_core::*;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

mod rows;
use rows::*;

enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same query code against whichever pool is configured.
macro_rules! on_pool {
    ($self:ident, $pool:ident => $body:expr) => {
        match &$self.backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

pub struct SqlStore {
    backend: Backend,
}

fn backend_err(err: sqlx::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// Migrations in order: `(version, description, sql)`.
fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

#[rustfmt::skip]
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "document acl", include_str!("../migrations/sqlite/0002_document_acl.sql")),
    (3, "embeddings", include_str!("../migrations/sqlite/0003_embeddings.sql")),
    (4, "tasks", include_str!("../migrations/sqlite/0004_tasks.sql")),
    (5, "triage", include_str!("../migrations/sqlite/0005_triage.sql")),
    (6, "agent", include_str!("../migrations/sqlite/0006_agent.sql")),
    (7, "humans", include_str!("../migrations/sqlite/0007_humans.sql")),
    (8, "resolved questions", include_str!("../migrations/sqlite/0008_resolved_questions.sql")),
];

#[rustfmt::skip]
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (2, "document acl", include_str!("../migrations/postgres/0002_document_acl.sql")),
    (3, "embeddings", include_str!("../migrations/postgres/0003_embeddings.sql")),
    (4, "tasks", include_str!("../migrations/postgres/0004_tasks.sql")),
    (5, "triage", include_str!("../migrations/postgres/0005_triage.sql")),
    (6, "agent", include_str!("../migrations/postgres/0006_agent.sql")),
    (7, "humans", include_str!("../migrations/postgres/0007_humans.sql")),
    (8, "resolved questions", include_str!("../migrations/postgres/0008_resolved_questions.sql")),
];

impl SqlStore {
    /// Opens (creating if needed) the SQLite database file in WAL mode and applies migrations.
    pub async fn open_sqlite(path: &Path, max_connections: u32) -> StoreResult<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await
            .map_err(backend_err)?;
        migrator(SQLITE_MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        Ok(Self {
            backend: Backend::Sqlite(pool),
        })
    }

    /// Connects to PostgreSQL and applies migrations.
    pub async fn open_postgres(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(backend_err)?;
        Self::open_postgres_with(options, max_connections).await
    }

    /// Connects with explicit options (tests use them to select a fresh schema).
    pub async fn open_postgres_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(backend_err)?;
        migrator(POSTGRES_MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        Ok(Self {
            backend: Backend::Postgres(pool),
        })
    }
}

/// `$first, $first+1, …` for `n` bound values of an `IN (…)` list.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

const TICKET_COLUMNS: &str = "id, workspace_id, customer_id, conversation_id, number, subject, description, \
     status, priority, comments, created_at, updated_at";

const CONVERSATION_COLUMNS: &str = "id, workspace_id, customer_id, channel, status, subject, created_at, updated_at, \
     team, priority, owner_agent_id, lease_until, queued_at";
const AGENT_COLUMNS: &str = "id, workspace_id, email, name, role, password_hash, teams, skills, capacity, \
     available, last_seen_at, created_at";
const MESSAGE_COLUMNS: &str =
    "id, conversation_id, author, text, citations, created_at, analysis, sender";

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    async fn ensure_workspace(
        &self,
        slug: &str,
        name: &str,
        public_chat: bool,
    ) -> StoreResult<Workspace> {
        validate_slug(slug).map_err(StoreError::Conflict)?;
        let id = WorkspaceId::new();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO workspaces (id, slug, name, public_chat, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (slug) DO NOTHING")
            .bind(id.to_string()).bind(slug).bind(name).bind(public_chat).bind(micros(Utc::now()))
            .execute(pool).await.map(|_| ()).map_err(backend_err))?;
        self.workspace_by_slug(slug)
            .await?
            .ok_or(StoreError::NotFound("workspace"))
    }

    async fn workspace_by_slug(&self, slug: &str) -> StoreResult<Option<Workspace>> {
        let row: Option<WorkspaceRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, slug, name, public_chat, created_at FROM workspaces WHERE slug = $1")
            .bind(slug).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(workspace_from_row).transpose()
    }

    async fn workspace(&self, id: WorkspaceId) -> StoreResult<Option<Workspace>> {
        let row: Option<WorkspaceRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, slug, name, public_chat, created_at FROM workspaces WHERE id = $1")
            .bind(id.to_string()).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(workspace_from_row).transpose()
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        let rows: Vec<WorkspaceRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, slug, name, public_chat, created_at FROM workspaces ORDER BY slug")
            .fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(workspace_from_row).collect()
    }

    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, name, prefix, hash, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(key.id.to_string()).bind(key.workspace_id.to_string()).bind(&key.name)
        .bind(&key.prefix).bind(&key.hash).bind(micros(key.created_at))
        .bind(key.revoked_at.map(micros))
        .execute(pool).await.map(|_| ()).map_err(|e| {
            if is_unique_violation(&e) { StoreError::Conflict("api key prefix exists".into()) } else { backend_err(e) }
        }))
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKey>> {
        let row: Option<ApiKeyRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, workspace_id, name, prefix, hash, created_at, revoked_at FROM api_keys WHERE prefix = $1")
            .bind(prefix).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(api_key_from_row).transpose()
    }

    async fn list_api_keys(&self, workspace: WorkspaceId) -> StoreResult<Vec<ApiKey>> {
        let rows: Vec<ApiKeyRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, workspace_id, name, prefix, hash, created_at, revoked_at FROM api_keys \
             WHERE workspace_id = $1 ORDER BY created_at")
            .bind(workspace.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(api_key_from_row).collect()
    }

    async fn signing_secret(&self) -> StoreResult<Vec<u8>> {
        // Two v4 UUIDs carry 244 random bits from the OS generator.
        let fresh_hex = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        // The first replica to get here wins; everyone reads the winner's value.
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('signing_secret', $1) ON CONFLICT (key) DO NOTHING")
            .bind(&fresh_hex).execute(pool).await.map(|_| ()).map_err(backend_err))?;
        let (value,): (String,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT value FROM settings WHERE key = 'signing_secret'")
            .fetch_one(pool).await.map_err(backend_err))?;
        decode_hex(&value)
    }

    async fn upsert_customer(
        &self,
        workspace: WorkspaceId,
        identity: &CustomerIdentity,
        profile: &Customer,
    ) -> StoreResult<Customer> {
        let now = micros(Utc::now());
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(backend_err)?;
            // Insert the customer row first (a write, so SQLite takes its lock up front), then
            // try to claim the identity; if another customer already holds it, drop ours.
            let new_id = CustomerId::new().to_string();
            sqlx::query("INSERT INTO customers (id, workspace_id, name, email, phone, tier, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&new_id).bind(workspace.to_string()).bind(&profile.name).bind(&profile.email)
                .bind(&profile.phone).bind(&profile.tier).bind(now)
                .execute(&mut *tx).await.map_err(backend_err)?;
            let claimed = sqlx::query("INSERT INTO customer_identities (workspace_id, channel, external_id, customer_id) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, channel, external_id) DO NOTHING")
                .bind(workspace.to_string()).bind(identity.channel.as_str()).bind(&identity.external_id).bind(&new_id)
                .execute(&mut *tx).await.map_err(backend_err)?.rows_affected() == 1;
            let id = if claimed {
                new_id
            } else {
                sqlx::query("DELETE FROM customers WHERE id = $1").bind(&new_id)
                    .execute(&mut *tx).await.map_err(backend_err)?;
                let (existing,): (String,) = sqlx::query_as(
                    "SELECT customer_id FROM customer_identities WHERE workspace_id = $1 AND channel = $2 AND external_id = $3")
                    .bind(workspace.to_string()).bind(identity.channel.as_str()).bind(&identity.external_id)
                    .fetch_one(&mut *tx).await.map_err(backend_err)?;
                sqlx::query("UPDATE customers SET name = COALESCE($2, name), email = COALESCE($3, email), \
                             phone = COALESCE($4, phone), tier = COALESCE($5, tier) WHERE id = $1")
                    .bind(&existing).bind(&profile.name).bind(&profile.email).bind(&profile.phone).bind(&profile.tier)
                    .execute(&mut *tx).await.map_err(backend_err)?;
                existing
            };
            tx.commit().await.map_err(backend_err)?;
            let id = parse_id(&id)?;
            self.customer(CustomerId(id)).await?.ok_or(StoreError::NotFound("customer"))
        })
    }

    async fn customer(&self, id: CustomerId) -> StoreResult<Option<Customer>> {
        let row: Option<CustomerRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, workspace_id, name, email, phone, tier, created_at FROM customers WHERE id = $1")
            .bind(id.to_string()).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(customer_from_row).transpose()
    }

    async fn customers(
        &self,
        ids: &[CustomerId],
    ) -> StoreResult<std::collections::HashMap<CustomerId, Customer>> {
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for batch in ids.chunks(500) {
            let sql = format!(
                "SELECT id, workspace_id, name, email, phone, tier, created_at FROM customers WHERE id IN ({})",
                placeholders(1, batch.len())
            );
            let rows: Vec<CustomerRow> = on_pool!(self, pool => {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
                for id in batch {
                    q = q.bind(id.to_string());
                }
                q.fetch_all(pool).await.map_err(backend_err)
            })?;
            for row in rows {
                let c = customer_from_row(row)?;
                out.insert(c.id, c);
            }
        }
        Ok(out)
    }

    async fn customer_by_external_id(
        &self,
        workspace: WorkspaceId,
        external_id: &str,
    ) -> StoreResult<Option<Customer>> {
        let row: Option<CustomerRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT c.id, c.workspace_id, c.name, c.email, c.phone, c.tier, c.created_at \
             FROM customer_identities i JOIN customers c ON c.id = i.customer_id \
             WHERE i.workspace_id = $1 AND i.external_id = $2 ORDER BY i.channel LIMIT 1")
            .bind(workspace.to_string()).bind(external_id).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(customer_from_row).transpose()
    }

    async fn upsert_order(&self, order: &Order) -> StoreResult<()> {
        let details = serde_json::to_string(&order.details)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO orders (id, workspace_id, customer_id, number, status, placed_at, currency, total_cents, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (workspace_id, number) DO UPDATE SET customer_id = excluded.customer_id, \
             status = excluded.status, placed_at = excluded.placed_at, currency = excluded.currency, \
             total_cents = excluded.total_cents, details = excluded.details")
            .bind(order.id.to_string()).bind(order.workspace_id.to_string()).bind(order.customer_id.to_string())
            .bind(&order.number).bind(&order.status).bind(micros(order.placed_at)).bind(&order.currency)
            .bind(order.total_cents).bind(details)
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn orders_for_customer(&self, customer: CustomerId) -> StoreResult<Vec<Order>> {
        let rows: Vec<OrderRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, workspace_id, customer_id, number, status, placed_at, currency, total_cents, details \
             FROM orders WHERE customer_id = $1 ORDER BY placed_at DESC")
            .bind(customer.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(order_from_row).collect()
    }

    async fn create_conversation(
        &self,
        new: NewConversation,
    ) -> StoreResult<Created<Conversation>> {
        let id = ConversationId::new();
        let now = micros(Utc::now());
        let (key, fingerprint) = match &new.idempotency {
            Some(k) => (Some(k.key.clone()), Some(k.fingerprint.clone())),
            None => (None, None),
        };
        let inserted = on_pool!(self, pool => sqlx::query(
            "INSERT INTO conversations (id, workspace_id, customer_id, channel, status, subject, created_at, updated_at, \
             last_seq, idempotency_key, idempotency_fingerprint) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0, $8, $9) \
             ON CONFLICT (workspace_id, idempotency_key) DO NOTHING")
            .bind(id.to_string()).bind(new.workspace_id.to_string()).bind(new.customer_id.to_string())
            .bind(new.channel.as_str()).bind(ConversationStatus::AiActive.as_str()).bind(&new.subject)
            .bind(now).bind(&key).bind(&fingerprint)
            .execute(pool).await.map(|r| r.rows_affected()).map_err(backend_err))?
            == 1;
        if inserted {
            let value = self
                .conversation(id)
                .await?
                .ok_or(StoreError::NotFound("conversation"))?;
            return Ok(Created {
                value,
                created: true,
                events: vec![],
            });
        }
        // Same key seen before in this workspace: replay, unless the request differs.
        let (existing_id, existing_fp): (String, Option<String>) = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, idempotency_fingerprint FROM conversations WHERE workspace_id = $1 AND idempotency_key = $2")
            .bind(new.workspace_id.to_string()).bind(&key).fetch_one(pool).await.map_err(backend_err))?;
        if existing_fp != fingerprint {
            return Err(StoreError::Conflict(
                "idempotency key was used with a different request".into(),
            ));
        }
        let value = self
            .conversation(ConversationId(parse_id(&existing_id)?))
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
        Ok(Created {
            value,
            created: false,
            events: vec![],
        })
    }

    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let row: Option<ConversationRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1")))
            .bind(id.to_string()).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(conversation_from_row).transpose()
    }

    async fn find_conversation_by_idempotency_key(
        &self,
        workspace: WorkspaceId,
        key: &str,
    ) -> StoreResult<Option<(Conversation, Option<String>)>> {
        let row: Option<(String, Option<String>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, idempotency_fingerprint FROM conversations WHERE workspace_id = $1 AND idempotency_key = $2")
            .bind(workspace.to_string()).bind(key).fetch_optional(pool).await.map_err(backend_err))?;
        let Some((id, fingerprint)) = row else {
            return Ok(None);
        };
        let conversation = self
            .conversation(ConversationId(parse_id(&id)?))
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
        Ok(Some((conversation, fingerprint)))
    }

    async fn list_conversations(
        &self,
        workspace: WorkspaceId,
        filter: &ConversationFilter,
    ) -> StoreResult<Vec<Conversation>> {
        // Newest first; the cursor is the last id seen (ids are time-ordered UUIDv7).
        let before = filter
            .before
            .map(|c| c.to_string())
            .unwrap_or_else(|| "~".to_string());
        let status = filter.status.map(|s| s.as_str().to_string());
        let rows: Vec<ConversationRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE workspace_id = $1 AND id < $2 \
                 AND ($3 IS NULL OR status = $3) ORDER BY id DESC LIMIT $4")))
            .bind(workspace.to_string()).bind(&before).bind(&status).bind(i64::from(filter.limit))
            .fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(conversation_from_row).collect()
    }

    async fn change_status(
        &self,
        id: ConversationId,
        from: ConversationStatus,
        to: ConversationStatus,
        reason: &str,
    ) -> StoreResult<(Conversation, Event)> {
        // Keeps the queue, priority and owner columns consistent with the status: a queue keeps
        // its team, leaving the humans clears the owner.
        let current = self
            .conversation(id)
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
        let mut t = Transition::new(id, from, to, reason);
        // Moving a person's conversation: only from the owner it has now (compare-and-set).
        t.owner = current.assignment.agent;
        t.assignment = current
            .assignment
            .kept((to == ConversationStatus::PendingHuman).then(Utc::now));
        if to == ConversationStatus::HumanActive {
            return Err(StoreError::Conflict(
                "a person takes a conversation by claiming it".into(),
            ));
        }
        let (conversation, mut events) = self.transition(t).await?;
        let event = events.remove(0);
        Ok((conversation, event))
    }

    async fn append_message(&self, new: NewMessage) -> StoreResult<Created<Message>> {
        let now = Utc::now();
        let message = Message {
            id: new.id,
            conversation_id: new.conversation_id,
            author: new.author,
            text: new.text.clone(),
            citations: new.citations.clone(),
            analysis: new.analysis.clone(),
            sender: new.sender.clone(),
            created_at: now,
        };
        // Who may post: the AI only while it owns the conversation, a person only while they
        // own it under a live lease. The condition is part of the update that takes the
        // conversation's write lock, so no status change can slip in between.
        let intent = new.analysis.as_ref().and_then(|a| {
            let i = a.triage.intent.as_ref()?;
            if i.out_of_scope {
                Some("out_of_scope".to_string())
            } else {
                i.best.as_ref().map(|b| b.name.clone())
            }
        });
        // The fourth parameter: the sender (a person) or the intent (a customer).
        let (condition, facts, fourth) = match (new.author, &new.sender) {
            (Author::Ai, _) => (
                "AND status = 'ai_active'",
                "first_response_at = COALESCE(first_response_at, $2)",
                None,
            ),
            (Author::Agent, Some(s)) => (
                "AND status = 'human_active' AND owner_agent_id = $4 AND lease_until >= $2",
                "first_response_at = COALESCE(first_response_at, $2)",
                Some(s.agent.to_string()),
            ),
            (Author::Agent, None) => {
                return Err(StoreError::NotOwner(
                    "a person's message names its sender".into(),
                ));
            }
            (Author::Customer, _) => (
                "",
                "last_customer_at = $2, intent = COALESCE(intent, $4)",
                intent.clone(),
            ),
            (Author::System, _) => ("", "subject = subject", None),
        };
        let uses_fourth = matches!(new.author, Author::Agent | Author::Customer);
        let sender_json = new.sender.as_ref().map(to_json).transpose()?;
        let bump = format!(
            "UPDATE conversations SET last_seq = last_seq + $3, updated_at = $2, {facts} \
             WHERE id = $1 {condition} RETURNING last_seq"
        );
        let payload = EventPayload::MessageCreated {
            message: message.clone(),
        };
        let mut payloads = vec![payload];
        payloads.extend(new.follow_up.iter().cloned());
        let payload_jsons = payloads
            .iter()
            .map(to_json)
            .collect::<StoreResult<Vec<_>>>()?;
        let steps = i64::try_from(payloads.len()).unwrap_or(1);
        let citations_json = to_json(&new.citations)?;
        let analysis_json = new.analysis.as_ref().map(to_json).transpose()?;
        let (key, fingerprint) = match &new.idempotency {
            Some(k) => (Some(k.key.clone()), Some(k.fingerprint.clone())),
            None => (None, None),
        };
        let conv = new.conversation_id.to_string();
        let outcome: Result<i64, Option<(String, Option<String>)>> = on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(backend_err)?;
            // Bumping last_seq first takes the conversation's write lock, which serializes
            // appends (and idempotency checks) per conversation on both backends.
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(bump.clone()))
                .bind(&conv).bind(micros(now)).bind(steps);
            if uses_fourth {
                query = query.bind(&fourth);
            }
            let seq: Option<(i64,)> = query.fetch_optional(&mut *tx).await.map_err(backend_err)?;
            let Some((last,)) = seq else {
                tx.rollback().await.map_err(backend_err)?;
                return match self.conversation(new.conversation_id).await? {
                    None => Err(StoreError::NotFound("conversation")),
                    Some(c) => Err(StoreError::NotOwner(format!(
                        "a {} message cannot be posted while the conversation is {} ({:?})",
                        new.author.as_str(), c.status, c.owner()
                    ))),
                };
            };
            let seq = last - steps + 1;
            let existing: Option<(String, Option<String>)> = match &key {
                Some(k) => sqlx::query_as(
                    "SELECT id, idempotency_fingerprint FROM messages WHERE conversation_id = $1 AND idempotency_key = $2")
                    .bind(&conv).bind(k).fetch_optional(&mut *tx).await.map_err(backend_err)?,
                None => None,
            };
            if existing.is_some() {
                tx.rollback().await.map_err(backend_err)?;
                Err(existing)
            } else {
                sqlx::query("INSERT INTO messages (id, conversation_id, position, author, text, citations, created_at, \
                             idempotency_key, idempotency_fingerprint, analysis, sender) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                    .bind(new.id.to_string()).bind(&conv).bind(seq).bind(new.author.as_str()).bind(&new.text)
                    .bind(&citations_json).bind(micros(now)).bind(&key).bind(&fingerprint).bind(&analysis_json).bind(&sender_json)
                    .execute(&mut *tx).await.map_err(backend_err)?;
                for (i, (p, json)) in payloads.iter().zip(&payload_jsons).enumerate() {
                    sqlx::query("INSERT INTO events (conversation_id, seq, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
                        .bind(&conv).bind(seq + i64::try_from(i).unwrap_or(0)).bind(p.type_name()).bind(json).bind(micros(now))
                        .execute(&mut *tx).await.map_err(backend_err)?;
                }
                if new.enqueue_turn {
                    sqlx::query("INSERT INTO turns (conversation_id, message_id, status, attempts, created_at) \
                                 VALUES ($1, $2, 'queued', 0, $3)")
                        .bind(&conv).bind(new.id.to_string()).bind(micros(now))
                        .execute(&mut *tx).await.map_err(backend_err)?;
                }
                tx.commit().await.map_err(backend_err)?;
                Ok(seq)
            }
        });
        match outcome {
            Ok(seq) => Ok(Created {
                value: message,
                created: true,
                events: payloads
                    .into_iter()
                    .zip(seq..)
                    .map(|(payload, seq)| Event {
                        seq,
                        conversation_id: new.conversation_id,
                        payload,
                        created_at: now,
                    })
                    .collect(),
            }),
            Err(Some((existing_id, existing_fp))) => {
                if existing_fp != fingerprint {
                    return Err(StoreError::Conflict(
                        "idempotency key was used with a different request".into(),
                    ));
                }
                let value = self
                    .message(MessageId(parse_id(&existing_id)?))
                    .await?
                    .ok_or(StoreError::NotFound("message"))?;
                Ok(Created {
                    value,
                    created: false,
                    events: vec![],
                })
            }
            Err(None) => Err(StoreError::Backend("inconsistent idempotency state".into())),
        }
    }

    async fn messages(&self, conversation: ConversationId) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE conversation_id = $1 ORDER BY position")))
            .bind(conversation.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(message_from_row).collect()
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let row: Option<MessageRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1")))
            .bind(id.to_string()).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(message_from_row).transpose()
    }

    async fn append_event(
        &self,
        conversation: ConversationId,
        payload: EventPayload,
    ) -> StoreResult<Event> {
        let now = Utc::now();
        let payload_json = to_json(&payload)?;
        let conv = conversation.to_string();
        let seq = on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(backend_err)?;
            let seq: Option<(i64,)> = sqlx::query_as(
                "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq")
                .bind(&conv).fetch_optional(&mut *tx).await.map_err(backend_err)?;
            let Some((seq,)) = seq else {
                return Err(StoreError::NotFound("conversation"));
            };
            sqlx::query("INSERT INTO events (conversation_id, seq, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&conv).bind(seq).bind(payload.type_name()).bind(&payload_json).bind(micros(now))
                .execute(&mut *tx).await.map_err(backend_err)?;
            tx.commit().await.map_err(backend_err)?;
            seq
        });
        Ok(Event {
            seq,
            conversation_id: conversation,
            payload,
            created_at: now,
        })
    }

    async fn latest_events(
        &self,
        conversation: ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let rows: Vec<EventRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT conversation_id, seq, payload, created_at FROM events WHERE conversation_id = $1 \
             ORDER BY seq DESC LIMIT $2")
            .bind(conversation.to_string()).bind(i64::from(limit))
            .fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().rev().map(event_from_row).collect()
    }

    async fn events_after(
        &self,
        conversation: ConversationId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let rows: Vec<EventRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT conversation_id, seq, payload, created_at FROM events WHERE conversation_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3")
            .bind(conversation.to_string()).bind(after).bind(i64::from(limit))
            .fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(event_from_row).collect()
    }

    async fn claim_turn(&self, lease_until: DateTime<Utc>) -> StoreResult<Option<Turn>> {
        let now = micros(Utc::now());
        // A turn is claimable when queued, or running with an expired lease (its worker died),
        // and no other turn of the same conversation is running under a live lease.
        let row: Option<(i64, String, String, i64)> = match &self.backend {
            Backend::Sqlite(pool) => sqlx::query_as(
                "UPDATE turns SET status = 'running', lease_until = $1, attempts = attempts + 1 WHERE id = (\
                   SELECT t.id FROM turns t WHERE (t.status = 'queued' OR (t.status = 'running' AND t.lease_until < $2)) \
                   AND NOT EXISTS (SELECT 1 FROM turns r WHERE r.conversation_id = t.conversation_id \
                     AND r.status = 'running' AND r.lease_until >= $2 AND r.id <> t.id) \
                   AND NOT EXISTS (SELECT 1 FROM turns e WHERE e.conversation_id = t.conversation_id \
                     AND e.status IN ('queued', 'running') AND e.id < t.id) \
                   ORDER BY t.id LIMIT 1) \
                 RETURNING id, conversation_id, message_id, attempts")
                .bind(micros(lease_until)).bind(now).fetch_optional(pool).await.map_err(backend_err)?,
            Backend::Postgres(pool) => sqlx::query_as(
                "UPDATE turns SET status = 'running', lease_until = $1, attempts = attempts + 1 WHERE id = (\
                   SELECT t.id FROM turns t WHERE (t.status = 'queued' OR (t.status = 'running' AND t.lease_until < $2)) \
                   AND NOT EXISTS (SELECT 1 FROM turns r WHERE r.conversation_id = t.conversation_id \
                     AND r.status = 'running' AND r.lease_until >= $2 AND r.id <> t.id) \
                   AND NOT EXISTS (SELECT 1 FROM turns e WHERE e.conversation_id = t.conversation_id \
                     AND e.status IN ('queued', 'running') AND e.id < t.id) \
                   ORDER BY t.id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 AND (status = 'queued' OR lease_until < $2) \
                 RETURNING id, conversation_id, message_id, attempts")
                .bind(micros(lease_until)).bind(now).fetch_optional(pool).await.map_err(backend_err)?,
        };
        row.map(|(id, conversation_id, message_id, attempts)| {
            Ok(Turn {
                id,
                conversation_id: ConversationId(parse_id(&conversation_id)?),
                message_id: MessageId(parse_id(&message_id)?),
                attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
            })
        })
        .transpose()
    }

    async fn finish_turn(&self, id: i64) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE turns SET status = 'done', lease_until = NULL WHERE id = $1")
            .bind(id).execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn fail_turn(&self, id: i64, error: &str, max_attempts: i32) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE turns SET status = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'queued' END, \
             lease_until = NULL, last_error = $2 WHERE id = $1")
            .bind(id).bind(error).bind(i64::from(max_attempts))
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn documents(&self, workspace: WorkspaceId, source: &str) -> StoreResult<Vec<Document>> {
        let rows: Vec<DocumentRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, workspace_id, source, external_id, title, url, tags, content_hash, updated_at, source_version, acl \
             FROM documents WHERE workspace_id = $1 AND source = $2 ORDER BY external_id")
            .bind(workspace.to_string()).bind(source).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(document_from_row).collect()
    }

    async fn put_document(&self, doc: &Document, chunks: &[Chunk]) -> StoreResult<()> {
        let tags = to_json(&doc.tags)?;
        let acl = to_json(&doc.acl)?;
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(backend_err)?;
            sqlx::query(
                "INSERT INTO documents (id, workspace_id, source, external_id, title, url, tags, content_hash, updated_at, \
                 source_version, acl) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, url = excluded.url, tags = excluded.tags, \
                 content_hash = excluded.content_hash, updated_at = excluded.updated_at, \
                 source_version = excluded.source_version, acl = excluded.acl")
                .bind(doc.id.to_string()).bind(doc.workspace_id.to_string()).bind(&doc.source).bind(&doc.external_id)
                .bind(&doc.title).bind(&doc.url).bind(&tags).bind(&doc.content_hash).bind(micros(doc.updated_at))
                .bind(&doc.source_version).bind(&acl)
                .execute(&mut *tx).await.map_err(backend_err)?;
            sqlx::query("DELETE FROM chunks WHERE document_id = $1").bind(doc.id.to_string())
                .execute(&mut *tx).await.map_err(backend_err)?;
            for chunk in chunks {
                sqlx::query("INSERT INTO chunks (id, document_id, ordinal, heading_path, text) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&chunk.id).bind(chunk.document_id.to_string()).bind(i64::from(chunk.ordinal))
                    .bind(to_json(&chunk.heading_path)?).bind(&chunk.text)
                    .execute(&mut *tx).await.map_err(backend_err)?;
            }
            tx.commit().await.map_err(backend_err)
        })
    }

    async fn delete_document(&self, id: DocumentId) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(backend_err)?;
            sqlx::query("DELETE FROM chunks WHERE document_id = $1").bind(id.to_string())
                .execute(&mut *tx).await.map_err(backend_err)?;
            sqlx::query("DELETE FROM documents WHERE id = $1").bind(id.to_string())
                .execute(&mut *tx).await.map_err(backend_err)?;
            tx.commit().await.map_err(backend_err)
        })
    }

    async fn workspace_documents(&self, workspace: WorkspaceId) -> StoreResult<Vec<Document>> {
        let rows: Vec<DocumentRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, workspace_id, source, external_id, title, url, tags, content_hash, updated_at, source_version, acl \
             FROM documents WHERE workspace_id = $1 ORDER BY title, id")
            .bind(workspace.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(document_from_row).collect()
    }

    async fn document_chunks(&self, id: DocumentId) -> StoreResult<Vec<(Document, Chunk)>> {
        let rows: Vec<DocumentChunkRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT d.id, d.workspace_id, d.source, d.external_id, d.title, d.url, d.tags, d.content_hash, d.updated_at, \
             d.source_version, d.acl, c.id, c.ordinal, c.heading_path, c.text FROM chunks c JOIN documents d ON d.id = c.document_id \
             WHERE d.id = $1 ORDER BY c.ordinal")
            .bind(id.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(document_chunk_from_row).collect()
    }

    async fn all_chunks(&self) -> StoreResult<Vec<(Document, Chunk)>> {
        let rows: Vec<DocumentChunkRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT d.id, d.workspace_id, d.source, d.external_id, d.title, d.url, d.tags, d.content_hash, d.updated_at, \
             d.source_version, d.acl, c.id, c.ordinal, c.heading_path, c.text FROM chunks c JOIN documents d ON d.id = c.document_id \
             ORDER BY d.id, c.ordinal")
            .fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(document_chunk_from_row).collect()
    }

    async fn knowledge_stats(&self, workspace: Option<WorkspaceId>) -> StoreResult<KnowledgeStats> {
        let ws = workspace.map(|w| w.to_string());
        let (documents, chunks): (i64, i64) = on_pool!(self, pool => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM documents WHERE $1 IS NULL OR workspace_id = $1), \
                    (SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id = c.document_id \
                     WHERE $1 IS NULL OR d.workspace_id = $1)")
            .bind(&ws).fetch_one(pool).await.map_err(backend_err))?;
        Ok(KnowledgeStats {
            documents: u64::try_from(documents).unwrap_or(0),
            chunks: u64::try_from(chunks).unwrap_or(0),
        })
    }

    async fn embeddings(
        &self,
        model: &str,
        hashes: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<f32>>> {
        let mut out = std::collections::HashMap::with_capacity(hashes.len());
        // Bounded batches keep the statement under both backends' parameter limits.
        for batch in hashes.chunks(500) {
            let sql = format!(
                "SELECT content_hash, vector FROM embeddings WHERE model = $1 AND content_hash IN ({})",
                placeholders(2, batch.len())
            );
            let rows: Vec<(String, Vec<u8>)> = on_pool!(self, pool => {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(model);
                for h in batch {
                    q = q.bind(h);
                }
                q.fetch_all(pool).await.map_err(backend_err)
            })?;
            for (hash, bytes) in rows {
                out.insert(hash, decode_vector(&bytes)?);
            }
        }
        Ok(out)
    }

    async fn put_resolved_question(&self, q: &ResolvedQuestion) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO resolved_questions (workspace_id, question_key, question, documents, origin, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, question_key) DO UPDATE SET \
             question = excluded.question, documents = excluded.documents, origin = excluded.origin, \
             updated_at = excluded.updated_at")
            .bind(q.workspace_id.to_string()).bind(&q.key).bind(&q.question)
            .bind(to_json(&q.documents)?).bind(&q.origin).bind(micros(q.updated_at))
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn resolved_questions(
        &self,
        workspace: WorkspaceId,
    ) -> StoreResult<Vec<ResolvedQuestion>> {
        let rows: Vec<(String, String, String, String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT question_key, question, documents, origin, updated_at FROM resolved_questions \
             WHERE workspace_id = $1 ORDER BY question_key")
            .bind(workspace.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter()
            .map(|(key, question, documents, origin, updated_at)| {
                Ok(ResolvedQuestion {
                    workspace_id: workspace,
                    key,
                    question,
                    documents: from_json("resolved question documents", &documents)?,
                    origin,
                    updated_at: time(updated_at)?,
                })
            })
            .collect()
    }

    async fn resolved_questions_version(&self, workspace: WorkspaceId) -> StoreResult<(u64, i64)> {
        // The modulus keeps the sum far from overflow on both backends.
        let (count, checksum): (i64, i64) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM((updated_at % 1000000007) + LENGTH(question_key) \
             + 7 * LENGTH(question) + 13 * LENGTH(documents)), 0) AS BIGINT) \
             FROM resolved_questions WHERE workspace_id = $1")
            .bind(workspace.to_string()).fetch_one(pool).await.map_err(backend_err))?;
        Ok((u64::try_from(count).unwrap_or(0), checksum))
    }

    async fn delete_resolved_question(
        &self,
        workspace: WorkspaceId,
        key: &str,
    ) -> StoreResult<bool> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM resolved_questions WHERE workspace_id = $1 AND question_key = $2")
            .bind(workspace.to_string()).bind(key)
            .execute(pool).await.map(|r| r.rows_affected()).map_err(backend_err))?;
        Ok(done > 0)
    }

    async fn put_embeddings(&self, model: &str, vectors: &[(String, Vec<f32>)]) -> StoreResult<()> {
        for batch in vectors.chunks(200) {
            on_pool!(self, pool => {
                let mut tx = pool.begin().await.map_err(backend_err)?;
                for (hash, v) in batch {
                    sqlx::query("INSERT INTO embeddings (model, content_hash, dims, vector) VALUES ($1, $2, $3, $4) \
                                 ON CONFLICT (model, content_hash) DO NOTHING")
                        .bind(model).bind(hash).bind(i64::try_from(v.len()).unwrap_or(0)).bind(encode_vector(v))
                        .execute(&mut *tx).await.map_err(backend_err)?;
                }
                tx.commit().await.map_err(backend_err)
            })?;
        }
        Ok(())
    }

    async fn create_task(
        &self,
        workspace: WorkspaceId,
        kind: &str,
        params: &serde_json::Value,
    ) -> StoreResult<Task> {
        let id = TaskId::new();
        let now = micros(Utc::now());
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO tasks (id, workspace_id, kind, params, status, created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', $5, $5)")
            .bind(id.to_string()).bind(workspace.to_string()).bind(kind).bind(to_json(params)?).bind(now)
            .execute(pool).await.map(|_| ()).map_err(backend_err))?;
        self.task(id).await?.ok_or(StoreError::NotFound("task"))
    }

    async fn task(&self, id: TaskId) -> StoreResult<Option<Task>> {
        let row: Option<TaskRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1")))
            .bind(id.to_string()).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(task_from_row).transpose()
    }

    async fn claim_task(&self, lease_until: DateTime<Utc>) -> StoreResult<Option<Task>> {
        let now = micros(Utc::now());
        let lock = match self.backend {
            Backend::Sqlite(_) => "",
            Backend::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE tasks SET status = 'running', lease_until = $1, attempts = attempts + 1, updated_at = $2 WHERE id = (\
               SELECT id FROM tasks WHERE status = 'queued' OR (status = 'running' AND lease_until < $2) \
               ORDER BY created_at LIMIT 1{lock}) \
             AND (status = 'queued' OR lease_until < $2) RETURNING {TASK_COLUMNS}"
        );
        let row: Option<TaskRow> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(micros(lease_until)).bind(now).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(task_from_row).transpose()
    }

    async fn task_progress(
        &self,
        id: TaskId,
        done: u64,
        total: u64,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE tasks SET progress_done = $2, progress_total = $3, lease_until = $4, updated_at = $5 WHERE id = $1")
            .bind(id.to_string()).bind(i64::try_from(done).unwrap_or(i64::MAX)).bind(i64::try_from(total).unwrap_or(i64::MAX))
            .bind(micros(lease_until)).bind(micros(Utc::now()))
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn put_setting(
        &self,
        workspace: WorkspaceId,
        name: &str,
        value: &serde_json::Value,
    ) -> StoreResult<()> {
        let now = micros(Utc::now());
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO workspace_settings (workspace_id, name, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (workspace_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")
            .bind(workspace.to_string()).bind(name).bind(to_json(value)?).bind(now)
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn setting(
        &self,
        workspace: WorkspaceId,
        name: &str,
    ) -> StoreResult<Option<serde_json::Value>> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT value FROM workspace_settings WHERE workspace_id = $1 AND name = $2")
            .bind(workspace.to_string()).bind(name).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(|(v,)| from_json("setting", &v)).transpose()
    }

    async fn put_model(&self, workspace: WorkspaceId, model: &StoredModel) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO workspace_models (workspace_id, kind, fingerprint, data, trained_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (workspace_id, kind) DO UPDATE SET fingerprint = excluded.fingerprint, data = excluded.data, \
             trained_at = excluded.trained_at")
            .bind(workspace.to_string()).bind(&model.kind).bind(&model.fingerprint).bind(to_json(&model.data)?)
            .bind(micros(model.trained_at))
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn model(&self, workspace: WorkspaceId, kind: &str) -> StoreResult<Option<StoredModel>> {
        let row: Option<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT fingerprint, data, trained_at FROM workspace_models WHERE workspace_id = $1 AND kind = $2")
            .bind(workspace.to_string()).bind(kind).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(|(fingerprint, data, at)| {
            Ok(StoredModel {
                kind: kind.to_string(),
                fingerprint,
                data: from_json("model", &data)?,
                trained_at: time(at)?,
            })
        })
        .transpose()
    }

    async fn model_fingerprint(
        &self,
        workspace: WorkspaceId,
        kind: &str,
    ) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT fingerprint FROM workspace_models WHERE workspace_id = $1 AND kind = $2")
            .bind(workspace.to_string()).bind(kind).fetch_optional(pool).await.map_err(backend_err))?;
        Ok(row.map(|(f,)| f))
    }

    async fn finish_task(&self, id: TaskId, result: &serde_json::Value) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE tasks SET status = 'succeeded', result = $2, error = NULL, lease_until = NULL, updated_at = $3 WHERE id = $1")
            .bind(id.to_string()).bind(to_json(result)?).bind(micros(Utc::now()))
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn fail_task(&self, id: TaskId, error: &str, max_attempts: i32) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE tasks SET status = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'queued' END, error = $2, \
             lease_until = NULL, updated_at = $4 WHERE id = $1")
            .bind(id.to_string()).bind(error).bind(i64::from(max_attempts)).bind(micros(Utc::now()))
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn order_by_number(
        &self,
        workspace: WorkspaceId,
        number: &str,
    ) -> StoreResult<Option<Order>> {
        let row: Option<OrderRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, workspace_id, customer_id, number, status, placed_at, currency, total_cents, details \
             FROM orders WHERE workspace_id = $1 AND number = $2")
            .bind(workspace.to_string()).bind(number).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(order_from_row).transpose()
    }

    async fn apply_action(&self, write: ActionWrite) -> StoreResult<Applied> {
        let ws = write.workspace_id.to_string();
        let now = Utc::now();
        let conversation = write.conversation_id.map(|c| c.to_string());
        let arguments = to_json(&write.arguments)?;
        let mut result = write.result.clone();
        // The record goes in first: on SQLite this takes the write lock at once, on PostgreSQL a
        // concurrent write with the same key waits here and then finds the key taken.
        let applied = on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(backend_err)?;
            let inserted = sqlx::query(
                "INSERT INTO actions (workspace_id, idempotency_key, conversation_id, tool, arguments, result, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace_id, idempotency_key) DO NOTHING")
                .bind(&ws).bind(&write.key).bind(&conversation).bind(&write.tool).bind(&arguments)
                .bind(to_json(&result)?).bind(micros(now))
                .execute(&mut *tx).await.map_err(backend_err)?.rows_affected() == 1;
            if inserted {
                match &write.effect {
                    Effect::UpdateOrder { order_id, expected_status, status, details } => {
                        let changed = sqlx::query(
                            "UPDATE orders SET status = $3, details = $4 WHERE id = $1 AND workspace_id = $5 AND status = $2")
                            .bind(order_id.to_string()).bind(expected_status).bind(status)
                            .bind(to_json(details)?).bind(&ws)
                            .execute(&mut *tx).await.map_err(backend_err)?.rows_affected();
                        if changed != 1 {
                            return Err(StoreError::Conflict(format!(
                                "the order is no longer {expected_status}")));
                        }
                    }
                    Effect::CreateTicket(ticket) => {
                        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tickets WHERE workspace_id = $1")
                            .bind(&ws).fetch_one(&mut *tx).await.map_err(backend_err)?;
                        let number = format!("T-{}", 1001 + count);
                        sqlx::query(
                            "INSERT INTO tickets (id, workspace_id, customer_id, conversation_id, number, subject, description, \
                             status, priority, comments, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)")
                            .bind(ticket.id.to_string()).bind(&ws).bind(ticket.customer_id.to_string())
                            .bind(ticket.conversation_id.map(|c| c.to_string())).bind(&number)
                            .bind(&ticket.subject).bind(&ticket.description).bind(&ticket.status)
                            .bind(&ticket.priority).bind(to_json(&ticket.comments)?).bind(micros(now))
                            .execute(&mut *tx).await.map_err(backend_err)?;
                        if let Some(obj) = result.as_object_mut() {
                            obj.insert("number".into(), serde_json::Value::String(number));
                        }
                        sqlx::query("UPDATE actions SET result = $3 WHERE workspace_id = $1 AND idempotency_key = $2")
                            .bind(&ws).bind(&write.key).bind(to_json(&result)?)
                            .execute(&mut *tx).await.map_err(backend_err)?;
                    }
                    Effect::UpdateTicket { ticket_id, status, comment } => {
                        let row: Option<(String,)> = sqlx::query_as(
                            "SELECT comments FROM tickets WHERE id = $1 AND workspace_id = $2")
                            .bind(ticket_id.to_string()).bind(&ws)
                            .fetch_optional(&mut *tx).await.map_err(backend_err)?;
                        let Some((comments,)) = row else {
                            return Err(StoreError::NotFound("ticket"));
                        };
                        let mut comments: Vec<TicketComment> = from_json("ticket comments", &comments)?;
                        comments.extend(comment.clone());
                        sqlx::query(
                            "UPDATE tickets SET status = COALESCE($2, status), comments = $3, updated_at = $4 WHERE id = $1")
                            .bind(ticket_id.to_string()).bind(status).bind(to_json(&comments)?).bind(micros(now))
                            .execute(&mut *tx).await.map_err(backend_err)?;
                    }
                    Effect::RecordOnly => {}
                }
                tx.commit().await.map_err(backend_err)?;
            }
            inserted
        });
        if applied {
            return Ok(Applied {
                record: ActionRecord {
                    key: write.key,
                    workspace_id: write.workspace_id,
                    conversation_id: write.conversation_id,
                    tool: write.tool,
                    arguments: write.arguments,
                    result,
                    created_at: now,
                },
                replayed: false,
            });
        }
        let row: Option<ActionRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT idempotency_key, workspace_id, conversation_id, tool, arguments, result, created_at \
             FROM actions WHERE workspace_id = $1 AND idempotency_key = $2")
            .bind(&ws).bind(&write.key).fetch_optional(pool).await.map_err(backend_err))?;
        let record = action_from_row(row.ok_or(StoreError::NotFound("action"))?)?;
        if record.tool != write.tool || record.arguments != write.arguments {
            return Err(StoreError::Conflict(format!(
                "idempotency key {} was used for another action",
                write.key
            )));
        }
        Ok(Applied {
            record,
            replayed: true,
        })
    }

    async fn actions_for_conversation(
        &self,
        conversation: ConversationId,
    ) -> StoreResult<Vec<ActionRecord>> {
        let rows: Vec<ActionRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT idempotency_key, workspace_id, conversation_id, tool, arguments, result, created_at \
             FROM actions WHERE conversation_id = $1 ORDER BY created_at, idempotency_key")
            .bind(conversation.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(action_from_row).collect()
    }

    async fn tickets_for_customer(&self, customer: CustomerId) -> StoreResult<Vec<Ticket>> {
        let rows: Vec<TicketRow> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE customer_id = $1 ORDER BY created_at DESC")))
            .bind(customer.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(ticket_from_row).collect()
    }

    async fn ticket_by_number(
        &self,
        workspace: WorkspaceId,
        number: &str,
    ) -> StoreResult<Option<Ticket>> {
        let row: Option<TicketRow> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE workspace_id = $1 AND number = $2")))
            .bind(workspace.to_string()).bind(number).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(ticket_from_row).transpose()
    }

    async fn agent_state(
        &self,
        conversation: ConversationId,
    ) -> StoreResult<Option<serde_json::Value>> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT state FROM agent_state WHERE conversation_id = $1")
            .bind(conversation.to_string()).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(|(v,)| from_json("agent state", &v)).transpose()
    }

    async fn put_agent_state(
        &self,
        conversation: ConversationId,
        state: Option<&serde_json::Value>,
    ) -> StoreResult<()> {
        let id = conversation.to_string();
        match state {
            Some(state) => on_pool!(self, pool => sqlx::query(
                "INSERT INTO agent_state (conversation_id, state, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (conversation_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at")
                .bind(&id).bind(to_json(state)?).bind(micros(Utc::now()))
                .execute(pool).await.map(|_| ()).map_err(backend_err)),
            None => {
                on_pool!(self, pool => sqlx::query("DELETE FROM agent_state WHERE conversation_id = $1")
                .bind(&id).execute(pool).await.map(|_| ()).map_err(backend_err))
            }
        }
    }

    async fn create_agent(&self, a: &AgentAccount) -> StoreResult<()> {
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO agents (id, workspace_id, email, name, role, password_hash, teams, skills, capacity, \
             available, last_seen_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(a.id.to_string()).bind(a.workspace_id.to_string()).bind(&a.email).bind(&a.name)
            .bind(a.role.as_str()).bind(&a.password_hash).bind(to_json(&a.teams)?).bind(to_json(&a.skills)?)
            .bind(i64::from(a.capacity)).bind(a.available).bind(a.last_seen_at.map(micros)).bind(micros(a.created_at))
            .execute(pool).await.map(|r| r.rows_affected()));
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "an account with the email {} exists",
                a.email
            ))),
            Err(e) => Err(backend_err(e)),
        }
    }

    async fn update_agent(&self, a: &AgentAccount) -> StoreResult<()> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE agents SET name = $2, role = $3, password_hash = $4, teams = $5, skills = $6, capacity = $7, \
             available = $8 WHERE id = $1")
            .bind(a.id.to_string()).bind(&a.name).bind(a.role.as_str()).bind(&a.password_hash)
            .bind(to_json(&a.teams)?).bind(to_json(&a.skills)?).bind(i64::from(a.capacity)).bind(a.available)
            .execute(pool).await.map(|r| r.rows_affected()).map_err(backend_err))?;
        if done == 0 {
            return Err(StoreError::NotFound("agent"));
        }
        Ok(())
    }

    async fn agent(&self, id: AgentId) -> StoreResult<Option<AgentAccount>> {
        let row: Option<AgentRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1")))
            .bind(id.to_string()).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(agent_from_row).transpose()
    }

    async fn agent_by_email(
        &self,
        workspace: WorkspaceId,
        email: &str,
    ) -> StoreResult<Option<AgentAccount>> {
        let row: Option<AgentRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!("SELECT {AGENT_COLUMNS} FROM agents WHERE workspace_id = $1 AND email = $2")))
            .bind(workspace.to_string()).bind(email.to_lowercase()).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(agent_from_row).transpose()
    }

    async fn agents(&self, workspace: WorkspaceId) -> StoreResult<Vec<AgentAccount>> {
        let rows: Vec<AgentRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!("SELECT {AGENT_COLUMNS} FROM agents WHERE workspace_id = $1 ORDER BY email")))
            .bind(workspace.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(agent_from_row).collect()
    }

    async fn touch_agent(
        &self,
        id: AgentId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(backend_err)?;
            sqlx::query("UPDATE agents SET last_seen_at = $2 WHERE id = $1")
                .bind(id.to_string()).bind(micros(now)).execute(&mut *tx).await.map_err(backend_err)?;
            // Only live leases are renewed: an expired one belongs to the queue again.
            let renewed = sqlx::query(
                "UPDATE conversations SET lease_until = $3 WHERE owner_agent_id = $1 \
                 AND status = 'human_active' AND lease_until >= $2")
                .bind(id.to_string()).bind(micros(now)).bind(micros(lease_until))
                .execute(&mut *tx).await.map_err(backend_err)?.rows_affected();
            tx.commit().await.map_err(backend_err)?;
            Ok(renewed)
        })
    }

    async fn create_session(&self, session: &AgentSession) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO agent_sessions (prefix, agent_id, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&session.prefix).bind(session.agent_id.to_string()).bind(&session.hash)
            .bind(micros(session.created_at)).bind(micros(session.expires_at))
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn session_by_prefix(&self, prefix: &str) -> StoreResult<Option<AgentSession>> {
        let row: Option<(String, String, String, i64, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT prefix, agent_id, hash, created_at, expires_at FROM agent_sessions WHERE prefix = $1")
            .bind(prefix).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(|r| {
            Ok(AgentSession {
                prefix: r.0,
                agent_id: AgentId(parse_id(&r.1)?),
                hash: r.2,
                created_at: time(r.3)?,
                expires_at: time(r.4)?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, prefix: &str) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM agent_sessions WHERE prefix = $1")
            .bind(prefix).execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn transition(&self, t: Transition) -> StoreResult<(Conversation, Vec<Event>)> {
        use ConversationStatus as S;
        t.check()?;
        let now = Utc::now();
        let window = chrono::Duration::days(REOPEN_WINDOW_DAYS);
        // The outcome facts follow the status.
        let facts = match (t.from, t.to) {
            (_, S::Resolved) => {
                "resolved_at = $4, resolution = CASE WHEN handed_off_at IS NULL THEN 'ai' ELSE 'human' END, \
                 reopened = (reopened AND $12 = $12)"
            }
            (S::Resolved, S::AiActive | S::PendingHuman) => {
                "reopened = (reopened OR (resolved_at IS NOT NULL AND resolved_at >= $12)), \
                 handed_off_at = CASE WHEN $3 = 'pending_human' THEN COALESCE(handed_off_at, $4) ELSE handed_off_at END"
            }
            (_, S::PendingHuman | S::HumanActive) => {
                "handed_off_at = COALESCE(handed_off_at, $4), reopened = (reopened AND $12 = $12)"
            }
            // `$12` is bound in every case; PostgreSQL wants each parameter used.
            _ => "reopened = (reopened AND $12 = $12)",
        };
        let update = format!(
            "UPDATE conversations SET status = $3, updated_at = $4, last_seq = last_seq + $5, \
             team = $6, priority = $7, owner_agent_id = $8, lease_until = $9, queued_at = $10, {facts} \
             WHERE id = $1 AND status = $2 \
             AND ($11 IS NULL OR owner_agent_id = $11) \
             AND ($13 IS NULL OR lease_until < $13) \
             AND ($14 IS NULL OR (SELECT COUNT(*) FROM conversations c2 WHERE c2.owner_agent_id = $8 \
                  AND c2.status = 'human_active' AND c2.id <> $1) < $14) \
             RETURNING last_seq"
        );
        let owner = match t.assignment.agent {
            Some(agent) => self.agent(agent).await?.map(|a| Sender {
                agent,
                name: a.name,
            }),
            None => None,
        };
        if t.assignment.agent.is_some() && owner.is_none() {
            return Err(StoreError::NotFound("agent"));
        }
        let mut payloads = vec![EventPayload::StatusChanged {
            from: t.from,
            to: t.to,
            reason: t.reason.clone(),
            owner,
            team: (t.to == S::PendingHuman)
                .then(|| t.assignment.team.clone())
                .flatten(),
        }];
        payloads.extend(t.events.iter().cloned());
        let jsons = payloads
            .iter()
            .map(to_json)
            .collect::<StoreResult<Vec<_>>>()?;
        let steps = i64::try_from(payloads.len()).unwrap_or(1);
        let id = t.conversation.to_string();
        let a = &t.assignment;
        let agent = a.agent.map(|x| x.to_string());
        let expected_owner = t.owner.map(|x| x.to_string());
        let seq: Option<i64> = on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(backend_err)?;
            let row: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(update.clone()))
                .bind(&id).bind(t.from.as_str()).bind(t.to.as_str()).bind(micros(now)).bind(steps)
                .bind(&a.team).bind(a.priority.as_str()).bind(&agent).bind(a.lease_until.map(micros))
                .bind(a.queued_at.map(micros)).bind(&expected_owner).bind(micros(now - window))
                .bind(t.lease_expired_at.map(micros)).bind(t.capacity.map(i64::from))
                .fetch_optional(&mut *tx).await.map_err(backend_err)?;
            match row {
                None => {
                    tx.rollback().await.map_err(backend_err)?;
                    None
                }
                Some((last,)) => {
                    let first = last - steps + 1;
                    for (i, (p, json)) in payloads.iter().zip(&jsons).enumerate() {
                        sqlx::query("INSERT INTO events (conversation_id, seq, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
                            .bind(&id).bind(first + i64::try_from(i).unwrap_or(0)).bind(p.type_name()).bind(json).bind(micros(now))
                            .execute(&mut *tx).await.map_err(backend_err)?;
                    }
                    // The handoff record learns who took it and who resolved it.
                    let latest = "(SELECT MAX(created_at) FROM handoffs WHERE conversation_id = $1)";
                    if t.to == S::HumanActive && t.from != S::HumanActive {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE handoffs SET claimed_at = COALESCE(claimed_at, $2), claimed_by = COALESCE(claimed_by, $3) \
                             WHERE conversation_id = $1 AND created_at = {latest}")))
                            .bind(&id).bind(micros(now)).bind(&agent).execute(&mut *tx).await.map_err(backend_err)?;
                    }
                    if t.to == S::Resolved && t.from == S::HumanActive && expected_owner.is_some() {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE handoffs SET resolved_by = $2 WHERE conversation_id = $1 AND created_at = {latest}")))
                            .bind(&id).bind(&expected_owner).execute(&mut *tx).await.map_err(backend_err)?;
                    }
                    tx.commit().await.map_err(backend_err)?;
                    Some(first)
                }
            }
        });
        let current = self
            .conversation(t.conversation)
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
        let Some(first) = seq else {
            return Err(if current.status != t.from {
                StoreError::InvalidTransition {
                    from: current.status,
                    to: t.to,
                }
            } else if t.capacity.is_some() {
                StoreError::NotOwner("the agent is at capacity".into())
            } else {
                StoreError::NotOwner(format!(
                    "the conversation is owned by {:?}",
                    current.owner()
                ))
            });
        };
        let events = payloads
            .into_iter()
            .zip(first..)
            .map(|(payload, seq)| Event {
                seq,
                conversation_id: t.conversation,
                payload,
                created_at: now,
            })
            .collect();
        Ok((current, events))
    }

    async fn expired_leases(&self, now: DateTime<Utc>) -> StoreResult<Vec<Conversation>> {
        let rows: Vec<ConversationRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE status = 'human_active' AND lease_until < $1 \
                 ORDER BY lease_until LIMIT 100")))
            .bind(micros(now)).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(conversation_from_row).collect()
    }

    async fn human_queue(&self, workspace: WorkspaceId) -> StoreResult<Vec<Conversation>> {
        let rows: Vec<ConversationRow> = on_pool!(self, pool => sqlx::query_as(
            sqlx::AssertSqlSafe(format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE workspace_id = $1 \
                 AND status IN ('pending_human', 'human_active') ORDER BY queued_at, id LIMIT 500")))
            .bind(workspace.to_string()).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(conversation_from_row).collect()
    }

    async fn human_queue_version(&self, workspace: WorkspaceId) -> StoreResult<(i64, i64, i64)> {
        let row: (i64, Option<i64>, Option<i64>) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*), MAX(updated_at), CAST(SUM(last_seq) AS BIGINT) FROM conversations \
             WHERE workspace_id = $1 AND status IN ('pending_human', 'human_active')")
            .bind(workspace.to_string()).fetch_one(pool).await.map_err(backend_err))?;
        Ok((row.0, row.1.unwrap_or(0), row.2.unwrap_or(0)))
    }

    async fn put_handoff(&self, h: &Handoff) -> StoreResult<()> {
        let workspace: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT workspace_id FROM conversations WHERE id = $1")
            .bind(h.conversation_id.to_string()).fetch_optional(pool).await.map_err(backend_err))?;
        let (workspace,) = workspace.ok_or(StoreError::NotFound("conversation"))?;
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO handoffs (id, workspace_id, conversation_id, team, record, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (conversation_id, created_at) DO UPDATE SET record = excluded.record, team = excluded.team")
            .bind(uuid::Uuid::now_v7().to_string()).bind(&workspace).bind(h.conversation_id.to_string())
            .bind(&h.team).bind(to_json(h)?).bind(micros(h.created_at))
            .execute(pool).await.map(|_| ()).map_err(backend_err))
    }

    async fn handoff(&self, conversation: ConversationId) -> StoreResult<Option<Handoff>> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT record FROM handoffs WHERE conversation_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1")
            .bind(conversation.to_string()).fetch_optional(pool).await.map_err(backend_err))?;
        row.map(|(r,)| from_json("handoff", &r)).transpose()
    }

    async fn latest_handoffs(
        &self,
        conversations: &[ConversationId],
    ) -> StoreResult<std::collections::HashMap<ConversationId, Handoff>> {
        let mut out = std::collections::HashMap::with_capacity(conversations.len());
        for batch in conversations.chunks(500) {
            // Newest first: the first record seen for a conversation is its latest.
            let sql = format!(
                "SELECT conversation_id, record FROM handoffs WHERE conversation_id IN ({}) \
                 ORDER BY created_at DESC, id DESC",
                placeholders(1, batch.len())
            );
            let rows: Vec<(String, String)> = on_pool!(self, pool => {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
                for id in batch {
                    q = q.bind(id.to_string());
                }
                q.fetch_all(pool).await.map_err(backend_err)
            })?;
            for (conversation, record) in rows {
                let id = ConversationId(parse_id(&conversation)?);
                if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(id) {
                    slot.insert(from_json("handoff", &record)?);
                }
            }
        }
        Ok(out)
    }

    async fn resolved_handoffs(
        &self,
        workspace: WorkspaceId,
        limit: u32,
    ) -> StoreResult<Vec<(Handoff, AgentId)>> {
        let rows: Vec<(String, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT record, resolved_by FROM handoffs WHERE workspace_id = $1 AND resolved_by IS NOT NULL \
             ORDER BY created_at DESC LIMIT $2")
            .bind(workspace.to_string()).bind(i64::from(limit)).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter()
            .map(|(r, a)| Ok((from_json("handoff", &r)?, AgentId(parse_id(&a)?))))
            .collect()
    }

    async fn queue_waits(
        &self,
        workspace: WorkspaceId,
        team: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<f64>> {
        let rows: Vec<(i64,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT claimed_at - created_at FROM handoffs WHERE workspace_id = $1 AND claimed_at IS NOT NULL \
             AND ($2 IS NULL OR team = $2) ORDER BY created_at DESC LIMIT $3")
            .bind(workspace.to_string()).bind(team).bind(i64::from(limit)).fetch_all(pool).await.map_err(backend_err))?;
        #[allow(clippy::cast_precision_loss)]
        Ok(rows.into_iter().map(|(us,)| us as f64 / 1e6).collect())
    }

    async fn rate(&self, conversation: ConversationId, rating: u8) -> StoreResult<Event> {
        let done = on_pool!(self, pool => sqlx::query("UPDATE conversations SET rating = $2 WHERE id = $1")
            .bind(conversation.to_string()).bind(i64::from(rating))
            .execute(pool).await.map(|r| r.rows_affected()).map_err(backend_err))?;
        if done == 0 {
            return Err(StoreError::NotFound("conversation"));
        }
        self.append_event(conversation, EventPayload::Rated { rating })
            .await
    }

    async fn outcome_facts(
        &self,
        workspace: WorkspaceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<OutcomeFacts>> {
        let rows: Vec<OutcomeRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, channel, status, intent, created_at, last_customer_at, first_response_at, handed_off_at, \
             resolved_at, resolution, reopened, rating FROM conversations \
             WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at")
            .bind(workspace.to_string()).bind(micros(from)).bind(micros(to)).fetch_all(pool).await.map_err(backend_err))?;
        rows.into_iter().map(outcome_from_row).collect()
    }
}

/// Helpers for tests of this and other crates.
pub mod testing {
    use super::*;

    /// Connects to `url` and returns a store living in a brand-new schema, so tests never see
    /// each other's data.
    pub async fn fresh_postgres(url: &str) -> StoreResult<SqlStore> {
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(backend_err)?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .map_err(backend_err)?;
        admin.close().await;
        let options = PgConnectOptions::from_str(url)
            .map_err(backend_err)?
            .options([("search_path", schema.as_str())]);
        SqlStore::open_postgres_with(options, 5).await
    }
}
