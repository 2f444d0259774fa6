//! LLM provider adapters behind `concierge_core::LlmProvider`: OpenAI-compatible Chat
//! Completions ([`OpenAiProvider`]: OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp server,
//! LM Studio) and the Anthropic Messages API ([`AnthropicProvider`]).
//!
//! Architecture invariant: this is the only crate that knows an LLM vendor's wire format. The
//! agent speaks `LlmRequest`/`LlmResponse`; each adapter emits its vendor's request strictly (the
//! tests validate every request against the official schema) and parses the stream leniently
//! (real servers are looser than their specs). Retries happen only before any streamed byte was
//! consumed.

pub mod anthropic;
pub mod openai;
pub mod retry;
pub mod sse;

pub use anthropic::{AnthropicAuth, AnthropicConfig, AnthropicProvider, AnthropicVersion};
pub use openai::{MaxTokensField, OpenAiAuth, OpenAiConfig, OpenAiProvider};
pub use retry::RetryPolicy;

use concierge_config::{LlmAuthHeader, LlmConfig, LlmProviderKind, MaxTokensFieldName};
use concierge_core::{LlmError, LlmErrorKind, LlmProvider, Pricing};
use std::sync::Arc;
use std::time::Duration;

/// The provider the `[llm]` configuration section describes, or `None` when it says `none`.
/// Expects a configuration that passed `concierge_config::load`'s validation; anything it cannot
/// use is still reported as a `BadRequest` error rather than guessed.
pub fn from_config(config: &LlmConfig) -> Result<Option<Arc<dyn LlmProvider>>, LlmError> {
    let invalid = |message: String| LlmError::new(LlmErrorKind::BadRequest, message);
    let retry = RetryPolicy {
        max_attempts: config.max_attempts.max(1),
        ..RetryPolicy::default()
    };
    let pricing = Pricing {
        usd_per_mtok_input: config.price_input_per_mtok,
        usd_per_mtok_output: config.price_output_per_mtok,
    };
    let timeout = Duration::from_secs(config.timeout_seconds.max(1));
    let base_url = config.effective_base_url();
    let key = config.api_key.clone();
    match config.provider {
        LlmProviderKind::None => Ok(None),
        LlmProviderKind::Openai => {
            let mut c = OpenAiConfig::new(&base_url, &config.model);
            c.auth = match (config.auth, key) {
                (Some(LlmAuthHeader::XApiKey), _) => {
                    return Err(invalid("llm.auth x-api-key is for anthropic".into()));
                }
                (Some(LlmAuthHeader::ApiKey), Some(key)) => OpenAiAuth::ApiKeyHeader(key),
                (Some(LlmAuthHeader::ApiKey), None) => {
                    return Err(invalid("llm.auth api-key needs llm.api_key".into()));
                }
                (_, Some(key)) => OpenAiAuth::Bearer(key),
                (_, None) => OpenAiAuth::None,
            };
            c.api_version = Some(config.api_version.trim().to_string()).filter(|v| !v.is_empty());
            c.max_tokens_field = match config.max_tokens_field {
                MaxTokensFieldName::MaxCompletionTokens => MaxTokensField::MaxCompletionTokens,
                MaxTokensFieldName::MaxTokens => MaxTokensField::MaxTokens,
            };
            c.timeout = timeout;
            c.retry = retry;
            c.pricing = pricing;
            Ok(Some(Arc::new(OpenAiProvider::new(c)?)))
        }
        LlmProviderKind::Anthropic => {
            let key = key.ok_or_else(|| invalid("the Anthropic API needs llm.api_key".into()))?;
            let version = AnthropicVersion::parse(&config.anthropic_version).ok_or_else(|| {
                invalid(format!(
                    "llm.anthropic_version {:?} is not supported",
                    config.anthropic_version
                ))
            })?;
            let mut c = AnthropicConfig::new(&base_url, &config.model, key.clone());
            c.auth = match config.auth {
                Some(LlmAuthHeader::Bearer) => AnthropicAuth::Bearer(key),
                Some(LlmAuthHeader::ApiKey) => {
                    return Err(invalid("llm.auth api-key is for Azure OpenAI".into()));
                }
                Some(LlmAuthHeader::XApiKey) | None => AnthropicAuth::ApiKey(key),
            };
            c.version = version;
            c.timeout = timeout;
            c.retry = retry;
            c.pricing = pricing;
            Ok(Some(Arc::new(AnthropicProvider::new(c)?)))
        }
    }
}
