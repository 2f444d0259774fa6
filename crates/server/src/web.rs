//! The customer web chat and the embeddable widget, compiled into the binary (no CDN).

use crate::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

const CHAT_HTML: &str = include_str!("../assets/chat.html");
const CHAT_CSS: &str = include_str!("../assets/chat.css");
const CHAT_JS: &str = include_str!("../assets/chat.js");
const WIDGET_JS: &str = include_str!("../assets/widget.js");
const WIDGET_DEMO_HTML: &str = include_str!("../assets/widget-demo.html");
const CONSOLE_HTML: &str = include_str!("../assets/console.html");
const CONSOLE_CSS: &str = include_str!("../assets/console.css");
const CONSOLE_JS: &str = include_str!("../assets/console.js");

/// The console is never framed (clickjacking of staff actions).
const CONSOLE_CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Only our own scripts and styles; the chat may be framed by any site (the widget).
const CHAT_CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors *";

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(chat))
        .route(
            "/assets/chat.css",
            get(|| async { asset("text/css; charset=utf-8", CHAT_CSS) }),
        )
        .route(
            "/assets/chat.js",
            get(|| async { asset("text/javascript; charset=utf-8", CHAT_JS) }),
        )
        .route(
            "/widget.js",
            get(|| async { asset("text/javascript; charset=utf-8", WIDGET_JS) }),
        )
        .route("/widget-demo", get(|| async { Html(WIDGET_DEMO_HTML) }))
        .route("/console", get(console))
        .route(
            "/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }),
        )
        .route(
            "/assets/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", CONSOLE_JS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn chat(State(state): State<Arc<AppState>>) -> Response {
    let html = CHAT_HTML
        .replace("{{TITLE}}", &escape_html(&state.config.server.chat_title))
        .replace(
            "{{WORKSPACE}}",
            &escape_html(&state.config.server.public_workspace),
        );
    (
        [
            (header::CONTENT_SECURITY_POLICY, CHAT_CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Html(html),
    )
        .into_response()
}

async fn console(State(state): State<Arc<AppState>>) -> Response {
    let html = CONSOLE_HTML
        .replace("{{TITLE}}", &escape_html(&state.config.server.chat_title))
        .replace(
            "{{WORKSPACE}}",
            &escape_html(&state.config.server.public_workspace),
        );
    (
        [
            (header::CONTENT_SECURITY_POLICY, CONSOLE_CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        Html(html),
    )
        .into_response()
}
