//! Credentials: workspace API keys (`ck_…`, SHA-256 hashed at rest), conversation tokens
//! (`ct_…`, an HMAC of the conversation id under the store's signing secret, so any replica can
//! verify them and an idempotent replay can return the same token), and console sessions
//! (`cs_…`, SHA-256 hashed at rest, for people signed in with an Argon2id-hashed password).

use crate::error::{ApiError, ErrorCode};
use axum::http::HeaderMap;
use chrono::Utc;
use concierge_core::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Who is calling.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    Anonymous,
    /// Holder of one conversation's token.
    Conversation(ConversationId),
    /// Holder of a workspace API key: staff and integrations.
    Workspace {
        workspace: WorkspaceId,
        key: ApiKeyId,
    },
    /// A person signed in to the console: staff of their workspace, acting by name.
    Agent(Box<AgentAccount>),
}

fn random_hex(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates an API key for the workspace; returns the stored record and the only copy of the
/// secret key.
pub async fn create_api_key(
    store: &dyn Store,
    workspace: WorkspaceId,
    name: &str,
) -> Result<(ApiKey, String), ApiError> {
    let prefix = random_hex(4)?;
    let secret = random_hex(24)?;
    let key = format!("ck_{prefix}_{secret}");
    let record = ApiKey {
        id: ApiKeyId::new(),
        workspace_id: workspace,
        name: name.to_string(),
        prefix,
        hash: hash_key(&key),
        created_at: Utc::now(),
        revoked_at: None,
    };
    store.insert_api_key(&record).await?;
    Ok((record, key))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn mac(secret: &[u8], conversation: ConversationId) -> Result<HmacSha256, ApiError> {
    let mut mac = HmacSha256::new_from_slice(secret).map_err(ApiError::internal)?;
    mac.update(b"conversation-token:v1:");
    mac.update(conversation.0.as_bytes());
    Ok(mac)
}

pub fn conversation_token(secret: &[u8], conversation: ConversationId) -> Result<String, ApiError> {
    let tag = mac(secret, conversation)?.finalize().into_bytes();
    Ok(format!(
        "ct_{}_{}",
        conversation.0.simple(),
        hex::encode(tag)
    ))
}

fn verify_conversation_token(secret: &[u8], token: &str) -> Option<ConversationId> {
    let rest = token.strip_prefix("ct_")?;
    let (id, tag) = rest.split_once('_')?;
    let id = ConversationId(uuid::Uuid::parse_str(id).ok()?);
    let tag = hex::decode(tag).ok()?;
    mac(secret, id).ok()?.verify_slice(&tag).ok()?;
    Some(id)
}

/// Resolves the `Authorization: Bearer` header. No header is anonymous; a bad one is an error.
pub async fn authenticate(
    store: &dyn Store,
    secret: &[u8],
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(Principal::Anonymous);
    };
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidCredentials,
            "the bearer token is invalid or revoked",
        )
    };
    let value = value.to_str().map_err(|_| invalid())?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidCredentials,
                "use `Authorization: Bearer <token>`",
            )
        })?
        .trim();
    if token.starts_with("ct_") {
        return verify_conversation_token(secret, token)
            .map(Principal::Conversation)
            .ok_or_else(invalid);
    }
    if let Some(rest) = token.strip_prefix("cs_") {
        let (prefix, _) = rest.split_once('_').ok_or_else(invalid)?;
        let session = store.session_by_prefix(prefix).await?.ok_or_else(invalid)?;
        if session.expires_at < Utc::now()
            || !constant_time_eq(session.hash.as_bytes(), hash_key(token).as_bytes())
        {
            return Err(invalid());
        }
        let agent = store.agent(session.agent_id).await?.ok_or_else(invalid)?;
        return Ok(Principal::Agent(Box::new(agent)));
    }
    if let Some(rest) = token.strip_prefix("ck_") {
        let (prefix, _) = rest.split_once('_').ok_or_else(invalid)?;
        let key = store.api_key_by_prefix(prefix).await?.ok_or_else(invalid)?;
        if key.revoked_at.is_some()
            || !constant_time_eq(key.hash.as_bytes(), hash_key(token).as_bytes())
        {
            return Err(invalid());
        }
        return Ok(Principal::Workspace {
            workspace: key.workspace_id,
            key: key.id,
        });
    }
    Err(invalid())
}

impl Principal {
    /// May this principal read and write `conversation`?
    pub fn authorize(&self, conversation: &Conversation) -> Result<(), ApiError> {
        match self {
            Principal::Conversation(id) if *id == conversation.id => Ok(()),
            Principal::Workspace { workspace, .. } if *workspace == conversation.workspace_id => {
                Ok(())
            }
            Principal::Agent(a) if a.workspace_id == conversation.workspace_id => Ok(()),
            Principal::Anonymous => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "send the conversation token or a workspace API key as `Authorization: Bearer <token>`",
            )),
            _ => Err(ApiError::new(
                ErrorCode::Forbidden,
                "these credentials do not grant access to this conversation",
            )),
        }
    }

    /// The workspace of an API key, or an error for anyone else.
    pub fn require_workspace(&self) -> Result<WorkspaceId, ApiError> {
        match self {
            Principal::Workspace { workspace, .. } => Ok(*workspace),
            Principal::Agent(a) => Ok(a.workspace_id),
            Principal::Anonymous => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "a workspace API key is required",
            )),
            Principal::Conversation(_) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "a conversation token cannot do this; use a workspace API key",
            )),
        }
    }

    pub fn is_staff(&self) -> bool {
        matches!(self, Principal::Workspace { .. } | Principal::Agent(_))
    }

    /// The signed-in person; console actions are taken by name.
    pub fn require_agent(&self) -> Result<&AgentAccount, ApiError> {
        match self {
            Principal::Agent(a) => Ok(a),
            Principal::Anonymous => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "sign in to the console (POST /v1/console/session) and send the session token",
            )),
            _ => Err(ApiError::new(
                ErrorCode::Forbidden,
                "only a person signed in to the console can do this",
            )),
        }
    }

    /// Administration: a workspace API key or a signed-in admin.
    pub fn require_admin(&self) -> Result<WorkspaceId, ApiError> {
        match self {
            Principal::Agent(a) if a.role != Role::Admin => Err(ApiError::new(
                ErrorCode::Forbidden,
                "only an admin (or a workspace API key) can do this",
            )),
            other => other.require_workspace(),
        }
    }
}

/// Hashes a password with Argon2id (the crate's defaults: 19 MiB, 2 passes) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Whether `password` matches the stored PHC string (constant time inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Opens a console session for `agent`; returns the token (its only copy) and its expiry.
pub async fn open_session(
    store: &dyn Store,
    agent: &AgentAccount,
    hours: u64,
) -> Result<(String, chrono::DateTime<Utc>), ApiError> {
    let prefix = random_hex(6)?;
    let token = format!("cs_{prefix}_{}", random_hex(24)?);
    let now = Utc::now();
    let expires_at = now + chrono::Duration::hours(i64::try_from(hours).unwrap_or(12));
    store
        .create_session(&AgentSession {
            prefix,
            agent_id: agent.id,
            hash: hash_key(&token),
            created_at: now,
            expires_at,
        })
        .await?;
    Ok((token, expires_at))
}

/// The `prefix` of a console session token, for signing out.
pub fn session_prefix(token: &str) -> Option<&str> {
    token.strip_prefix("cs_")?.split_once('_').map(|(p, _)| p)
}

impl Principal {
    /// The workspace of a console person, when the principal is one.
    pub fn agent(&self) -> Option<&AgentAccount> {
        match self {
            Principal::Agent(a) => Some(a),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_tokens_verify_only_for_their_conversation_and_secret() {
        let secret = [7u8; 32];
        let a = ConversationId::new();
        let token = conversation_token(&secret, a).expect("token");
        assert_eq!(verify_conversation_token(&secret, &token), Some(a));
        assert_eq!(verify_conversation_token(&[8u8; 32], &token), None);
        let b = ConversationId::new();
        let forged = token.replace(&a.0.simple().to_string(), &b.0.simple().to_string());
        assert_eq!(verify_conversation_token(&secret, &forged), None);
        assert_eq!(verify_conversation_token(&secret, "ct_garbage"), None);
    }
}
