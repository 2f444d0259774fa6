//! OpenAI-compatible `/v1/embeddings` (OpenAI, Azure OpenAI, Ollama, vLLM, TEI, LM Studio...).

use crate::normalize;
use async_trait::async_trait;
use concierge_knowledge::embed::{EmbedError, Embedder};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;

/// Inputs per request (OpenAI accepts up to 2048; small batches keep latency and memory bounded).
const BATCH: usize = 64;
const ATTEMPTS: u32 = 4;

pub struct OpenAiEmbedder {
    http: reqwest::Client,
    /// e.g. `http://localhost:11434/v1` (the `/embeddings` path is appended).
    base_url: String,
    model: String,
    api_key: Option<SecretString>,
    dims: usize,
    model_id: String,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    index: usize,
}

impl OpenAiEmbedder {
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<SecretString>,
        dims: usize,
        timeout: Duration,
    ) -> Result<Self, EmbedError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| EmbedError(e.to_string()))?;
        let base_url = base_url.trim_end_matches('/').to_string();
        Ok(Self {
            model_id: format!("openai-compatible:{base_url}:{model}"),
            http,
            base_url,
            model: model.to_string(),
            api_key,
            dims,
        })
    }

    async fn request(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body =
            serde_json::json!({ "model": self.model, "input": batch, "encoding_format": "float" });
        let mut delay = Duration::from_millis(250);
        for attempt in 1..=ATTEMPTS {
            let mut req = self
                .http
                .post(format!("{}/embeddings", self.base_url))
                .json(&body);
            if let Some(key) = &self.api_key {
                req = req.bearer_auth(key.expose_secret());
            }
            let res = match req.send().await {
                Ok(r) => r,
                Err(e) if attempt < ATTEMPTS && (e.is_timeout() || e.is_connect()) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    continue;
                }
                Err(e) => return Err(EmbedError(format!("{}: {e}", self.base_url))),
            };
            let status = res.status();
            if status.is_success() {
                let parsed: Response = res
                    .json()
                    .await
                    .map_err(|e| EmbedError(format!("unexpected response: {e}")))?;
                let mut out = vec![Vec::new(); batch.len()];
                for item in parsed.data {
                    let slot = out
                        .get_mut(item.index)
                        .ok_or_else(|| EmbedError(format!("index {} out of range", item.index)))?;
                    *slot = item.embedding;
                }
                for v in &mut out {
                    if v.len() != self.dims {
                        return Err(EmbedError(format!(
                            "expected {} dimensions, got {}",
                            self.dims,
                            v.len()
                        )));
                    }
                    normalize(v);
                }
                return Ok(out);
            }
            let retryable = status.as_u16() == 408
                || status.as_u16() == 409
                || status.as_u16() == 429
                || status.is_server_error();
            if retryable && attempt < ATTEMPTS {
                // Honour Retry-After (seconds) when the server sends it.
                let wait = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<f64>().ok())
                    .map(|s| Duration::from_secs_f64(s.clamp(0.0, 60.0)))
                    .unwrap_or(delay);
                tokio::time::sleep(wait).await;
                delay *= 2;
                continue;
            }
            let text = res.text().await.unwrap_or_default();
            return Err(EmbedError(format!(
                "{} answered {status}: {}",
                self.base_url,
                text.chars().take(300).collect::<String>()
            )));
        }
        Err(EmbedError("retries exhausted".into()))
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dims(&self) -> usize {
        self.dims
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(self.request(batch).await?);
        }
        Ok(out)
    }
}
