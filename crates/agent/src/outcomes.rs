//! The outcome report: how conversations ended, over a time range, split by intent and channel.
//!
//! Definitions (per conversation created in the range):
//! - *contained*: resolved without a person; *resolved after handoff*: resolved after one;
//! - *abandoned*: not resolved, and the customer has been silent for `abandon_after`
//!   (conversations still in progress are neither);
//! - *reopened*: the customer wrote again within 7 days of a resolution; a *durable* resolution
//!   is one that was not reopened;
//! - time to first response: first AI or human reply after creation; time to resolution: from
//!   creation to the (latest) resolution.

use chrono::{DateTime, Duration, Utc};
use concierge_core::{ConversationStatus, OutcomeFacts, Resolution};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeStats {
    pub conversations: u64,
    pub contained: u64,
    pub resolved_after_handoff: u64,
    pub abandoned: u64,
    pub in_progress: u64,
    pub reopened: u64,
    pub handed_off: u64,
    /// Shares of all conversations (0 when there are none).
    pub containment_rate: f64,
    pub resolved_after_handoff_rate: f64,
    pub abandonment_rate: f64,
    /// Of the resolved conversations, the share not reopened within 7 days.
    pub durable_resolution_rate: f64,
    pub first_response_seconds_p50: Option<f64>,
    pub first_response_seconds_p90: Option<f64>,
    pub resolution_seconds_p50: Option<f64>,
    pub resolution_seconds_p90: Option<f64>,
    pub ratings: u64,
    pub rating_mean: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeReport {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub total: OutcomeStats,
    /// Keyed by the first understood intent (`out_of_scope`, or `unknown` without one).
    pub by_intent: BTreeMap<String, OutcomeStats>,
    pub by_channel: BTreeMap<String, OutcomeStats>,
}

/// Computes the report from the facts as of `now`.
pub fn report(
    facts: &[OutcomeFacts],
    now: DateTime<Utc>,
    abandon_after: Duration,
) -> OutcomeReport {
    let mut by_intent: BTreeMap<String, Vec<&OutcomeFacts>> = BTreeMap::new();
    let mut by_channel: BTreeMap<String, Vec<&OutcomeFacts>> = BTreeMap::new();
    for f in facts {
        by_intent
            .entry(f.intent.clone().unwrap_or_else(|| "unknown".into()))
            .or_default()
            .push(f);
        by_channel
            .entry(f.channel.as_str().to_string())
            .or_default()
            .push(f);
    }
    let all: Vec<&OutcomeFacts> = facts.iter().collect();
    OutcomeReport {
        from: None,
        to: None,
        total: stats(&all, now, abandon_after),
        by_intent: by_intent
            .into_iter()
            .map(|(k, v)| (k, stats(&v, now, abandon_after)))
            .collect(),
        by_channel: by_channel
            .into_iter()
            .map(|(k, v)| (k, stats(&v, now, abandon_after)))
            .collect(),
    }
}

fn stats(facts: &[&OutcomeFacts], now: DateTime<Utc>, abandon_after: Duration) -> OutcomeStats {
    let mut s = OutcomeStats {
        conversations: facts.len() as u64,
        ..OutcomeStats::default()
    };
    let mut first = Vec::new();
    let mut resolution = Vec::new();
    let mut ratings = Vec::new();
    for f in facts {
        let resolved = matches!(
            f.status,
            ConversationStatus::Resolved | ConversationStatus::Closed
        ) && f.resolved_at.is_some();
        if f.handed_off_at.is_some() {
            s.handed_off += 1;
        }
        if f.reopened {
            s.reopened += 1;
        }
        if resolved {
            match f.resolution {
                Some(Resolution::Human) => s.resolved_after_handoff += 1,
                _ => s.contained += 1,
            }
        } else {
            let last = f.last_customer_at.unwrap_or(f.created_at);
            if now - last >= abandon_after {
                s.abandoned += 1;
            } else {
                s.in_progress += 1;
            }
        }
        if let Some(t) = f.first_response_at {
            first.push(seconds(t - f.created_at));
        }
        if let (true, Some(t)) = (resolved, f.resolved_at) {
            resolution.push(seconds(t - f.created_at));
        }
        if let Some(r) = f.rating {
            ratings.push(f64::from(r));
        }
    }
    let n = s.conversations as f64;
    if n > 0.0 {
        s.containment_rate = s.contained as f64 / n;
        s.resolved_after_handoff_rate = s.resolved_after_handoff as f64 / n;
        s.abandonment_rate = s.abandoned as f64 / n;
    }
    let resolved = s.contained + s.resolved_after_handoff;
    if resolved > 0 {
        let durable = facts
            .iter()
            .filter(|f| f.resolved_at.is_some() && !f.reopened)
            .count()
            .min(resolved as usize);
        s.durable_resolution_rate = durable as f64 / resolved as f64;
    }
    s.first_response_seconds_p50 = quantile(&mut first, 0.5);
    s.first_response_seconds_p90 = quantile(&mut first, 0.9);
    s.resolution_seconds_p50 = quantile(&mut resolution, 0.5);
    s.resolution_seconds_p90 = quantile(&mut resolution, 0.9);
    s.ratings = ratings.len() as u64;
    s.rating_mean =
        (!ratings.is_empty()).then(|| ratings.iter().sum::<f64>() / ratings.len() as f64);
    s
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// Nearest-rank quantile.
fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use concierge_core::{Channel, ConversationId};

    fn fact(minutes_ago: i64) -> OutcomeFacts {
        let created = Utc::now() - Duration::minutes(minutes_ago);
        OutcomeFacts {
            conversation_id: ConversationId::new(),
            channel: Channel::Web,
            status: ConversationStatus::AiActive,
            intent: Some("order_status".into()),
            created_at: created,
            last_customer_at: Some(created),
            first_response_at: Some(created + Duration::seconds(2)),
            handed_off_at: None,
            resolved_at: None,
            resolution: None,
            reopened: false,
            rating: None,
        }
    }

    #[test]
    fn rates_split_contained_handed_off_abandoned_and_durable() {
        let now = Utc::now();
        let mut contained = fact(60);
        contained.status = ConversationStatus::Resolved;
        contained.resolved_at = Some(contained.created_at + Duration::seconds(30));
        contained.resolution = Some(Resolution::Ai);
        contained.rating = Some(5);
        let mut human = fact(60);
        human.status = ConversationStatus::Resolved;
        human.handed_off_at = Some(human.created_at + Duration::seconds(10));
        human.resolved_at = Some(human.created_at + Duration::seconds(600));
        human.resolution = Some(Resolution::Human);
        human.reopened = true;
        human.channel = Channel::Api;
        human.rating = Some(2);
        let abandoned = fact(60 * 48);
        let live = fact(5);
        let r = report(
            &[contained, human, abandoned, live],
            now,
            Duration::hours(24),
        );
        let t = &r.total;
        assert_eq!(
            (
                t.conversations,
                t.contained,
                t.resolved_after_handoff,
                t.abandoned,
                t.in_progress
            ),
            (4, 1, 1, 1, 1)
        );
        assert!((t.containment_rate - 0.25).abs() < 1e-9);
        assert!((t.durable_resolution_rate - 0.5).abs() < 1e-9);
        assert_eq!(t.rating_mean, Some(3.5));
        assert_eq!(t.first_response_seconds_p50, Some(2.0));
        assert_eq!(t.resolution_seconds_p90, Some(600.0));
        assert_eq!(r.by_channel["api"].resolved_after_handoff, 1);
        assert_eq!(r.by_channel["web"].conversations, 3);
        assert_eq!(r.by_intent["order_status"].conversations, 4);
    }
}
