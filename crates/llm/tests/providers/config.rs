//! `from_config`: the `[llm]` section turned into a provider that talks to the configured server.

use crate::fake::{Reply, spawn};
use crate::{anthropic, openai};
use concierge_config::{LlmAuthHeader, LlmConfig, LlmProviderKind, MaxTokensFieldName};
use concierge_core::{LlmErrorKind, Pricing, Usage};

#[tokio::test]
async fn none_builds_nothing_and_openai_and_anthropic_reach_their_servers() {
    assert!(
        concierge_llm::from_config(&LlmConfig::default())
            .expect("none")
            .is_none()
    );

    let (fake, base) = spawn(
        openai::check,
        "/openai/deployments/d1/chat/completions",
        vec![Reply::sse(openai::text_stream("hi"))],
    )
    .await;
    let config = LlmConfig {
        provider: LlmProviderKind::Openai,
        base_url: format!("{base}/openai/deployments/d1"),
        model: "gpt-4o".into(),
        api_key: Some("azure-key".to_string().into()),
        auth: Some(LlmAuthHeader::ApiKey),
        api_version: "2024-10-21".into(),
        max_tokens_field: MaxTokensFieldName::MaxTokens,
        price_input_per_mtok: 2.5,
        price_output_per_mtok: 10.0,
        ..LlmConfig::default()
    };
    let p = concierge_llm::from_config(&config)
        .expect("built")
        .expect("some");
    assert_eq!(p.id(), "openai:gpt-4o");
    assert_eq!(
        p.pricing(),
        Pricing {
            usd_per_mtok_input: 2.5,
            usd_per_mtok_output: 10.0
        }
    );
    let response = p
        .complete(&openai::ask("q"), &|_| {})
        .await
        .expect("completion");
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 20,
            output_tokens: 5
        }
    );
    assert!((p.pricing().cost_usd(&response.usage) - 0.0001).abs() < 1e-12);
    fake.assert_clean();
    assert_eq!(fake.header(0, "api-key").as_deref(), Some("azure-key"));
    assert_eq!(fake.query(0).as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(fake.body(0)["max_tokens"], 512);

    let (fake, base) = spawn(
        anthropic::check,
        anthropic::PATH,
        vec![Reply::sse(anthropic::text_stream("hi"))],
    )
    .await;
    let config = LlmConfig {
        provider: LlmProviderKind::Anthropic,
        base_url: base,
        model: "claude-sonnet-4-5".into(),
        api_key: Some("sk-ant".to_string().into()),
        anthropic_version: "2023-06-01".into(),
        auth: Some(LlmAuthHeader::Bearer),
        ..LlmConfig::default()
    };
    let p = concierge_llm::from_config(&config)
        .expect("built")
        .expect("some");
    p.complete(&anthropic::ask("q"), &|_| {})
        .await
        .expect("completion");
    fake.assert_clean();
    assert_eq!(
        fake.header(0, "anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        fake.header(0, "authorization").as_deref(),
        Some("Bearer sk-ant")
    );

    let unknown_version = LlmConfig {
        anthropic_version: "2024-01-01".into(),
        ..config
    };
    let err = concierge_llm::from_config(&unknown_version)
        .err()
        .expect("refused");
    assert_eq!(err.kind, LlmErrorKind::BadRequest);
}
