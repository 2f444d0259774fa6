//! The human side over HTTP: accounts and sign-in, the queue, claim races, the owner's reply in
//! the customer's chat, internal notes the customer never sees, the case file, hand-back to the
//! AI, the customer's resolve-and-rate and the outcome report.

use crate::helpers::*;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub async fn setup_people(&self) {
        let res = self
            .http
            .put(self.url("/v1/teams"))
            .bearer_auth(&self.api_key)
            .json(&json!({
                "teams": [
                    {"name": "care", "title": "Customer care", "skills": {"languages": ["en"]}},
                    {"name": "billing", "skills": {"intents": ["billing"]}}
                ],
                "default_team": "care"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        for (email, name) in [("ana@example.com", "Ana"), ("ben@example.com", "Ben")] {
            let res = self
                .http
                .post(self.url("/v1/agents"))
                .bearer_auth(&self.api_key)
                .json(
                    &json!({"email": email, "name": name, "password": PASSWORD, "teams": ["care"]}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        }
    }

    pub async fn sign_in(&self, email: &str) -> String {
        let res = self
            .http
            .post(self.url("/v1/console/session"))
            .json(&json!({"workspace": "default", "email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    async fn console_post(
        &self,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
}

#[tokio::test]
async fn people_sign_in_claim_reply_note_and_hand_back_over_http() {
    let app = TestApp::spawn().await;
    app.setup_people().await;
    // Accounts: a duplicate email is a conflict; a short password is refused.
    let dup = app
        .http
        .post(app.url("/v1/agents"))
        .bearer_auth(&app.api_key)
        .json(&json!({"email": "ANA@example.com", "name": "Ana 2", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_problem(dup, 409, "account_exists").await;
    let short = app
        .http
        .post(app.url("/v1/agents"))
        .bearer_auth(&app.api_key)
        .json(&json!({"email": "cy@example.com", "name": "Cy", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_problem(short, 422, "invalid_body").await;
    // A wrong password and an unknown account look the same.
    for (email, password) in [
        ("ana@example.com", "wrong password!!"),
        ("zed@example.com", PASSWORD),
    ] {
        let res = app
            .http
            .post(app.url("/v1/console/session"))
            .json(&json!({"workspace": "default", "email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 401, "invalid_credentials").await;
    }
    let ana = app.sign_in("ana@example.com").await;
    let ben = app.sign_in("ben@example.com").await;
    assert!(ana.starts_with("cs_"));

    // The customer asks for a person.
    let conv = app.create_conversation().await;
    app.post_message(&conv, "My heater makes a loud noise", None)
        .await;
    app.wait_for_log_event(&conv.id, &app.api_key, "reply.sent")
        .await;
    let res = app.handoff(&conv, None).await;
    assert_eq!(res.status(), 200);
    let queue: Value = app
        .http
        .get(app.url("/v1/console/queue"))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["conversation"]["id"] == conv.id.as_str())
        .expect("in the queue")
        .clone();
    assert_eq!(item["conversation"]["status"], "pending_human");
    assert_eq!(item["conversation"]["owner"]["kind"], "queue");
    assert_eq!(item["conversation"]["team"], "care");
    assert_eq!(item["position"], 1);
    assert_eq!(item["handoff"]["trigger"], "customer");
    assert!(
        item["handoff"]["summary"]["text"]
            .as_str()
            .unwrap()
            .contains("loud noise"),
        "{item}"
    );

    // Two people claim at once: one owns it, the other gets 409.
    let claim = format!("/v1/console/conversations/{}/claim", conv.id);
    let (a, b) = tokio::join!(
        app.console_post(&ana, &claim, None),
        app.console_post(&ben, &claim, None)
    );
    let (a, b) = (a.status().as_u16(), b.status().as_u16());
    assert!(
        (a, b) == (200, 409) || (a, b) == (409, 200),
        "one claim wins: {a} {b}"
    );
    let (owner, other, owner_name) = if a == 200 {
        (&ana, &ben, "Ana")
    } else {
        (&ben, &ana, "Ben")
    };

    // The heartbeat renews the owner's lease only while they are active at the console.
    let beat = |active: bool| {
        app.console_post(
            owner,
            "/v1/console/heartbeat",
            Some(json!({"active": active})),
        )
    };
    let idle: Value = beat(false).await.json().await.unwrap();
    assert_eq!(idle["renewed"], 0);
    let active: Value = beat(true).await.json().await.unwrap();
    assert_eq!(active["renewed"], 1);

    let reply = format!("/v1/console/conversations/{}/reply", conv.id);
    let res = app
        .console_post(other, &reply, Some(json!({"text": "me too"})))
        .await;
    assert_problem(res, 409, "not_owner").await;
    let res = app
        .http
        .post(app.url(&reply))
        .bearer_auth(owner)
        .header("Idempotency-Key", "reply-1")
        .json(&json!({"text": "Hello, I can help with the noise."}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let sent: Value = res.json().await.unwrap();
    assert_eq!(sent["author"], "agent");
    assert_eq!(sent["sender"]["name"], owner_name);
    // A retry with the same key posts once.
    let again = app
        .http
        .post(app.url(&reply))
        .bearer_auth(owner)
        .header("Idempotency-Key", "reply-1")
        .json(&json!({"text": "Hello, I can help with the noise."}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    let messages = app.messages(&conv).await;
    let from_person: Vec<&Value> = messages.iter().filter(|m| m["author"] == "agent").collect();
    assert_eq!(from_person.len(), 1, "{messages:?}");
    assert_eq!(from_person[0]["sender"]["name"], owner_name);

    // An internal note: staff see it, the customer never does.
    let res = app
        .console_post(
            other,
            &format!("/v1/console/conversations/{}/notes", conv.id),
            Some(json!({"text": "Customer called yesterday too"})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let customer_log = app.event_log(&conv.id, &conv.token).await;
    assert!(
        !customer_log
            .to_string()
            .contains("Customer called yesterday"),
        "the customer saw an internal note"
    );
    let staff_log = app.event_log(&conv.id, &app.api_key).await;
    assert!(staff_log.to_string().contains("Customer called yesterday"));

    // The case file.
    let file: Value = app
        .http
        .get(app.url(&format!("/v1/console/conversations/{}", conv.id)))
        .bearer_auth(owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(file["conversation"]["owner"]["kind"], "agent");
    assert_eq!(file["owner_name"], owner_name);
    assert_eq!(file["notes"].as_array().unwrap().len(), 1);
    assert!(
        file["handoff"]["summary"]["wants"]
            .as_str()
            .unwrap()
            .contains("loud noise")
    );
    // The customer's token cannot read the case file.
    let res = app
        .get(
            &format!("/v1/console/conversations/{}", conv.id),
            Some(&conv.token),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;

    // Transfer to a team that does not exist: refused; hand back with a note.
    let res = app
        .console_post(
            owner,
            &format!("/v1/console/conversations/{}/transfer", conv.id),
            Some(json!({"team": "nope"})),
        )
        .await;
    assert_problem(res, 422, "invalid_body").await;
    let res = app
        .console_post(
            owner,
            &format!("/v1/console/conversations/{}/hand-back", conv.id),
            Some(json!({"note": "Told them to descale; AI can take follow-ups."})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let back: Value = res.json().await.unwrap();
    assert_eq!(back["status"], "ai_active");
    // The customer's next question is answered by the AI again.
    app.post_message(&conv, "How do I reset my password?", None)
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let m = app.messages(&conv).await;
        if m.last().is_some_and(|m| m["author"] == "ai") && m.len() > messages.len() + 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no AI answer: {m:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The customer ends it with a rating; the outcome report counts it.
    let res = app
        .http
        .post(app.url(&format!("/v1/conversations/{}/resolve", conv.id)))
        .bearer_auth(&conv.token)
        .json(&json!({"rating": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bad = app
        .http
        .post(app.url(&format!("/v1/conversations/{}/resolve", conv.id)))
        .bearer_auth(&conv.token)
        .json(&json!({"rating": 9}))
        .send()
        .await
        .unwrap();
    assert_problem(bad, 422, "invalid_body").await;
    let report: Value = app
        .http
        .get(app.url("/v1/analytics/outcomes"))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["total"]["conversations"], 1, "{report}");
    assert_eq!(report["total"]["resolved_after_handoff"], 1, "{report}");
    assert_eq!(report["total"]["rating_mean"], 5.0);
    assert_eq!(report["by_channel"]["web"]["conversations"], 1);
    let res = app
        .get(
            "/v1/analytics/outcomes?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z",
            Some(&app.api_key),
        )
        .await;
    assert_problem(res, 400, "invalid_parameter").await;

    // Sign out: the token stops working.
    let res = app
        .http
        .delete(app.url("/v1/console/session"))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app.get("/v1/console/queue", Some(&ana)).await;
    assert_problem(res, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn the_console_page_is_served_without_third_party_assets() {
    let app = TestApp::spawn().await;
    let res = app.get("/console", None).await;
    assert_eq!(res.status(), 200);
    let csp = res
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let html = res.text().await.unwrap();
    assert!(html.contains("/assets/console.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    for asset in ["/assets/console.js", "/assets/console.css"] {
        let res = app.get(asset, None).await;
        assert_eq!(res.status(), 200, "{asset}");
    }
}
