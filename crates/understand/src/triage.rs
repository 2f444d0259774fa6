//! A workspace's intents (its configuration), the model trained from them, and the triage of
//! one message: intent with out-of-scope decision, urgency, sentiment, complexity, language and
//! amounts.

use crate::intent::{Examples, IntentConfig, IntentModel};
use crate::signals::{self, IntentHints};
use concierge_core::{Handling, IntentResult, IntentScore, LanguageResult, Triage, Urgency};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The intent engine's version: bumped when a stored model must be retrained (2: the lexical
/// classifier joined the blend).
const ENGINE: &str = "intent-engine:2";

/// The setting name and model kind under which a workspace's intents are stored.
pub const INTENTS: &str = "intents";

/// One intent of a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentSpec {
    /// Identifier: lowercase letters, digits, `_` and `-`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How a message with this intent is handled (default: answered from knowledge).
    #[serde(default)]
    pub handling: Handling,
    /// Urgency floor for messages with this intent.
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// The team a person comes from when this intent goes to a person.
    #[serde(default)]
    pub team: Option<String>,
    /// Example utterances (at least 3).
    pub examples: Vec<String>,
}

/// A workspace's intent configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IntentSettings {
    pub intents: Vec<IntentSpec>,
    /// Messages that match none of the intents (teach the model what "none" looks like and
    /// calibrate the out-of-scope threshold).
    #[serde(default)]
    pub out_of_scope_examples: Vec<String>,
}

pub const MIN_EXAMPLES: usize = 3;
pub const MAX_EXAMPLES: usize = 20_000;
const OOS: &str = "__out_of_scope__";

impl IntentSettings {
    /// Every problem at once, each naming the field (`intents[2].examples`).
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        if self.intents.len() < 2 {
            problems.push(("intents".into(), "at least two intents are needed".into()));
        }
        let mut seen = std::collections::HashSet::new();
        let mut total = self.out_of_scope_examples.len();
        for (i, intent) in self.intents.iter().enumerate() {
            let valid_name = !intent.name.is_empty()
                && intent.name.len() <= 64
                && intent
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !valid_name {
                problems.push((
                    format!("intents[{i}].name"),
                    "1-64 characters: lowercase letters, digits, _ and -".into(),
                ));
            } else if !seen.insert(intent.name.as_str()) {
                problems.push((
                    format!("intents[{i}].name"),
                    format!("duplicate intent {}", intent.name),
                ));
            }
            let examples = intent
                .examples
                .iter()
                .filter(|e| !e.trim().is_empty())
                .count();
            if examples < MIN_EXAMPLES {
                problems.push((
                    format!("intents[{i}].examples"),
                    format!("at least {MIN_EXAMPLES} non-empty examples are needed"),
                ));
            }
            total += intent.examples.len();
        }
        if total > MAX_EXAMPLES {
            problems.push((
                "intents".into(),
                format!("{total} examples; at most {MAX_EXAMPLES}"),
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// SHA-256 of the canonical JSON: any change to intents or examples changes it.
    /// Identifies the settings and the engine that trains on them: a changed setting, or an
    /// engine change that needs a retrain (`ENGINE`), gives a new fingerprint.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(ENGINE.as_bytes());
        h.update(&json);
        hex::encode(h.finalize())
    }

    /// Every example with its label, out-of-scope ones labelled with an internal name.
    pub fn labelled(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self
            .intents
            .iter()
            .flat_map(|i| {
                i.examples
                    .iter()
                    .filter(|e| !e.trim().is_empty())
                    .map(|e| (e.as_str(), i.name.as_str()))
            })
            .collect();
        out.extend(
            self.out_of_scope_examples
                .iter()
                .filter(|e| !e.trim().is_empty())
                .map(|e| (e.as_str(), OOS)),
        );
        out
    }

    pub fn intent(&self, name: &str) -> Option<&IntentSpec> {
        self.intents.iter().find(|i| i.name == name)
    }
}

/// The trained model of a workspace, stored with the configuration it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceIntents {
    pub fingerprint: String,
    pub settings: IntentSettings,
    pub model: IntentModel,
    pub train_seconds: f64,
}

impl WorkspaceIntents {
    /// Trains on the settings' examples; `vectors` holds one sentence vector per
    /// [`IntentSettings::labelled`] example, in that order.
    pub fn train(settings: IntentSettings, vectors: &[Vec<f32>]) -> Result<Self, String> {
        settings
            .validate()
            .map_err(|p| format!("invalid intents: {p:?}"))?;
        let started = std::time::Instant::now();
        let labelled = settings.labelled();
        if labelled.len() != vectors.len() {
            return Err("one vector per example is needed".into());
        }
        let texts: Vec<&str> = labelled.iter().map(|(t, _)| *t).collect();
        let labels: Vec<&str> = labelled.iter().map(|(_, l)| *l).collect();
        // Interleave so the held-out fifth used for calibration covers every intent.
        let order = interleave(&labels);
        let texts: Vec<&str> = order.iter().map(|&i| texts[i]).collect();
        let labels: Vec<&str> = order.iter().map(|&i| labels[i]).collect();
        let vectors: Vec<Vec<f32>> = order.iter().map(|&i| vectors[i].clone()).collect();
        let config = IntentConfig {
            oos_label: OOS.into(),
            ..IntentConfig::default()
        };
        let model = IntentModel::train(
            Examples {
                texts: &texts,
                vectors: &vectors,
                labels: &labels,
            },
            None,
            &config,
        )?;
        Ok(Self {
            fingerprint: settings.fingerprint(),
            settings,
            model,
            train_seconds: started.elapsed().as_secs_f64(),
        })
    }

    pub fn classify(&self, text: &str, vector: &[f32]) -> IntentResult {
        let p = self.model.predict(text, vector);
        let alternatives: Vec<IntentScore> = p
            .alternatives
            .iter()
            .map(|(name, confidence)| IntentScore {
                name: name.clone(),
                confidence: *confidence,
            })
            .collect();
        let best = alternatives.first().cloned();
        let handling = best
            .as_ref()
            .and_then(|b| self.settings.intent(&b.name))
            .map(|i| i.handling);
        IntentResult {
            best,
            alternatives: alternatives.into_iter().skip(1).collect(),
            handling,
            out_of_scope: p.intent.is_none() && self.model.threshold.is_some(),
            oos_score: p.oos_score,
            threshold: self.model.threshold.map(|t| 1.0 - t),
            model: self.fingerprint.clone(),
        }
    }
}

/// Indices ordered round-robin across labels (a, b, c, a, b, c, ...).
fn interleave(labels: &[&str]) -> Vec<usize> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| g == l) {
            Some((_, v)) => v.push(i),
            None => groups.push((l, vec![i])),
        }
    }
    let longest = groups.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    (0..longest)
        .flat_map(|k| {
            groups
                .iter()
                .filter_map(move |(_, v)| v.get(k).copied())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Triage of one message. `intents` and `vector` are absent when the workspace has no trained
/// intents (the other signals still apply).
pub fn triage(text: &str, intents: Option<(&WorkspaceIntents, &[f32])>) -> Triage {
    let started = std::time::Instant::now();
    let intent = intents.map(|(m, v)| m.classify(text, v));
    let spec = intents.zip(intent.as_ref()).and_then(|((m, _), r)| {
        if r.out_of_scope {
            None
        } else {
            m.settings.intent(&r.best.as_ref()?.name)
        }
    });
    let hints = IntentHints {
        intent: spec.map(|s| s.name.as_str()),
        handling: spec.map(|s| s.handling),
        urgency: spec.and_then(|s| s.urgency),
    };
    let sentiment = signals::sentiment(text);
    let urgency = signals::urgency(text, hints, &sentiment);
    let complexity = signals::complexity(text, hints, &sentiment);
    let language = crate::language::detect(text).map(|l| LanguageResult {
        code: l.code,
        confidence: l.confidence as f32,
        reliable: l.reliable,
    });
    Triage {
        intent,
        urgency,
        sentiment,
        complexity,
        language,
        amounts: signals::amounts(text),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        // Set by the caller, which has the window vectors.
        guard: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, handling: Handling, examples: &[&str]) -> IntentSpec {
        IntentSpec {
            name: name.into(),
            description: String::new(),
            handling,
            urgency: None,
            team: None,
            examples: examples.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn validation_names_every_problem() {
        let settings = IntentSettings {
            intents: vec![
                spec("Bad Name", Handling::Knowledge, &["a", "b", "c"]),
                spec("ok", Handling::Knowledge, &["a", " "]),
                spec("ok", Handling::Knowledge, &["a", "b", "c"]),
            ],
            out_of_scope_examples: vec![],
        };
        let problems = settings.validate().err().unwrap_or_default();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            vec!["intents[0].name", "intents[1].examples", "intents[2].name"]
        );
        assert_ne!(
            settings.fingerprint(),
            IntentSettings::default().fingerprint()
        );
    }

    #[test]
    fn interleaving_spreads_every_label() {
        let order = interleave(&["a", "a", "a", "b", "b", "c"]);
        assert_eq!(order, vec![0, 3, 5, 1, 4, 2]);
    }

    /// Three intents and an out-of-scope group on separable synthetic vectors.
    #[test]
    fn trains_and_classifies_with_out_of_scope() {
        let settings = IntentSettings {
            intents: vec![
                spec(
                    "refund",
                    Handling::Procedure,
                    &["r1", "r2", "r3", "r4", "r5", "r6"],
                ),
                spec(
                    "shipping",
                    Handling::Knowledge,
                    &["s1", "s2", "s3", "s4", "s5", "s6"],
                ),
                spec(
                    "legal",
                    Handling::Human,
                    &["l1", "l2", "l3", "l4", "l5", "l6"],
                ),
            ],
            out_of_scope_examples: ["o1", "o2", "o3", "o4", "o5", "o6"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let axis = |k: usize, j: usize| {
            let mut v = vec![0.02 * (j as f32 % 3.0); 8];
            v[k] = 1.0;
            v[k + 4] = 0.1 * j as f32;
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
        };
        let labelled = settings.labelled();
        let vectors: Vec<Vec<f32>> = labelled
            .iter()
            .enumerate()
            .map(|(j, (_, l))| {
                let k = match *l {
                    "refund" => 0,
                    "shipping" => 1,
                    "legal" => 2,
                    _ => 3,
                };
                axis(k, j % 6)
            })
            .collect();
        let model = WorkspaceIntents::train(settings, &vectors).unwrap_or_else(|e| panic!("{e}"));
        let refund = triage("Please refund my order", Some((&model, &axis(0, 2))));
        let intent = refund.intent.clone().unwrap_or_else(|| panic!("intent"));
        assert_eq!(intent.best.map(|b| b.name), Some("refund".to_string()));
        assert_eq!(intent.handling, Some(Handling::Procedure));
        assert!(!intent.out_of_scope);
        assert!(refund.complexity.needs_action);
        let other = triage("Tell me a joke", Some((&model, &axis(3, 2))));
        assert!(other.out_of_scope(), "{:?}", other.intent);
        // Without a model the other signals still work.
        let bare = triage("My card was stolen!", None);
        assert!(bare.intent.is_none());
        assert_eq!(bare.urgency.level, Urgency::Critical);
        // Three words are too few to tell the language reliably: whatever it guesses is flagged.
        assert!(bare.language.is_none_or(|l| l.code == "en" || !l.reliable));
        let long = triage(
            "My package has not arrived yet and I would like to know where it is.",
            None,
        );
        assert_eq!(long.language.map(|l| l.code), Some("en".to_string()));
    }
}
