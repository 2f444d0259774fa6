//! A small client for the server's API and event stream, shared by `chat` and `bench`.

use anyhow::{Context, bail};
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    pub conversation: Value,
    pub token: String,
}

impl Created {
    pub fn id(&self) -> String {
        self.conversation["id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    pub event: String,
    pub data: Value,
}

impl Client {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// Opens a conversation, anonymously or, with a workspace API key, as the customer with
    /// that external id (`as_customer = Some((key, external_id))`).
    pub async fn create_conversation(
        &self,
        workspace: Option<&str>,
        as_customer: Option<(&str, &str)>,
    ) -> anyhow::Result<Created> {
        let mut body = match workspace {
            Some(w) => json!({ "workspace": w }),
            None => json!({}),
        };
        let mut req = self
            .http
            .post(format!("{}/v1/conversations", self.base))
            .header("idempotency-key", uuid::Uuid::new_v4().to_string());
        if let Some((key, external_id)) = as_customer {
            body["customer"] = json!({ "external_id": external_id });
            req = req.bearer_auth(key);
        }
        let res = req
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        if !res.status().is_success() {
            bail!(
                "creating a conversation failed: {} {}",
                res.status(),
                res.text().await.unwrap_or_default()
            );
        }
        Ok(res.json().await?)
    }

    pub async fn post_message(&self, conv: &Created, text: &str) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!(
                "{}/v1/conversations/{}/messages",
                self.base,
                conv.id()
            ))
            .bearer_auth(&conv.token)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&json!({ "text": text }))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!(
                "posting failed: {} {}",
                res.status(),
                res.text().await.unwrap_or_default()
            );
        }
        Ok(res.json().await?)
    }

    pub async fn handoff(&self, conv: &Created) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!(
                "{}/v1/conversations/{}/handoff",
                self.base,
                conv.id()
            ))
            .bearer_auth(&conv.token)
            .send()
            .await?;
        if !res.status().is_success() {
            bail!(
                "handoff failed: {} {}",
                res.status(),
                res.text().await.unwrap_or_default()
            );
        }
        Ok(res.json().await?)
    }

    /// Opens the event stream after `after`.
    pub async fn events(
        &self,
        conv: &Created,
        after: i64,
    ) -> anyhow::Result<impl Stream<Item = anyhow::Result<ServerEvent>> + use<>> {
        let res = self
            .http
            .get(format!(
                "{}/v1/conversations/{}/events",
                self.base,
                conv.id()
            ))
            .bearer_auth(&conv.token)
            .header("accept", "text/event-stream")
            .header("last-event-id", after.to_string())
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("event stream failed: {}", res.status());
        }
        Ok(res.bytes_stream().eventsource().map(|item| {
            let e = item.map_err(|e| anyhow::anyhow!("event stream error: {e}"))?;
            let data = serde_json::from_str(&e.data).unwrap_or(Value::Null);
            Ok(ServerEvent {
                event: e.event,
                data,
            })
        }))
    }
}
