//! The intent engine: a softmax classifier over sentence vectors, trained from a workspace's
//! example utterances, with out-of-scope detection by a calibrated threshold on the
//! probability the best in-scope intent gets.
//!
//! Out-of-scope examples, when the training data has some (label `oos_label`), are a class of
//! their own, so the model learns what "none of these" looks like; the threshold on top is
//! chosen on validation data only (the examples given as `valid`, or a held-out fold of the
//! training data when none are given), maximising the mean of in-scope accuracy and
//! out-of-scope recall. Without any out-of-scope example to calibrate on, nothing is
//! declared out of scope.

use crate::linear::{Softmax, TrainConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub struct IntentConfig {
    pub oos_label: String,
    pub train: TrainConfig,
    /// Alternatives returned with a prediction.
    pub alternatives: usize,
}

impl Default for IntentConfig {
    fn default() -> Self {
        Self {
            oos_label: "oos".into(),
            train: TrainConfig {
                l2: 1e-4,
                max_iterations: 400,
                tolerance: 1e-5,
            },
            alternatives: 3,
        }
    }
}

/// Labelled examples: one text, sentence vector and label each.
#[derive(Debug, Clone, Copy)]
pub struct Examples<'a> {
    pub texts: &'a [&'a str],
    pub vectors: &'a [Vec<f32>],
    pub labels: &'a [&'a str],
}

/// A trained intent model (serialisable: stored per workspace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentModel {
    /// Class names; `oos_class` is the index of the out-of-scope class, if trained.
    pub labels: Vec<String>,
    pub oos_class: Option<usize>,
    pub oos_label: String,
    pub model: Softmax,
    /// Declare out of scope when the best in-scope probability is below this.
    pub threshold: Option<f32>,
    pub alternatives: usize,
}

/// One message's intent.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The intent, or none when out of scope.
    pub intent: Option<String>,
    /// The best in-scope intent's probability.
    pub confidence: f32,
    /// The best in-scope intents with their probabilities, best first.
    pub alternatives: Vec<(String, f32)>,
    /// Higher is more likely out of scope: `1 - confidence`.
    pub oos_score: f32,
}

fn flatten(vectors: &[Vec<f32>]) -> (Vec<f32>, usize) {
    let dims = vectors.first().map_or(0, Vec::len);
    let mut x = Vec::with_capacity(vectors.len() * dims);
    for v in vectors {
        x.extend_from_slice(v);
    }
    (x, dims)
}

/// The threshold on the best in-scope probability that maximises the mean of in-scope
/// accuracy and out-of-scope recall over `(confidence, is_oos, in_scope_correct)`.
pub fn choose_threshold(points: &[(f32, bool, bool)]) -> Option<f32> {
    let oos = points.iter().filter(|p| p.1).count();
    let ins = points.len() - oos;
    if oos == 0 || ins == 0 {
        return None;
    }
    let mut candidates: Vec<f32> = points.iter().map(|p| p.0).collect();
    candidates.sort_by(|a, b| a.total_cmp(b));
    candidates.dedup();
    let mut best = (f64::MIN, 0.0f32);
    let mut previous = 0.0f32;
    for c in candidates.iter().copied().chain([1.0 + f32::EPSILON]) {
        // Threshold between consecutive observed confidences.
        let t = (previous + c) / 2.0;
        previous = c;
        let recall = points.iter().filter(|p| p.1 && p.0 < t).count() as f64 / oos as f64;
        let accuracy =
            points.iter().filter(|p| !p.1 && p.2 && p.0 >= t).count() as f64 / ins as f64;
        let score = (recall + accuracy) / 2.0;
        if score > best.0 + 1e-12 {
            best = (score, t);
        }
    }
    Some(best.1)
}

impl IntentModel {
    /// Trains on `vectors` (one per text) with `labels`; `valid` (texts, vectors, labels)
    /// calibrates the out-of-scope threshold.
    pub fn train(
        examples: Examples<'_>,
        valid: Option<Examples<'_>>,
        config: &IntentConfig,
    ) -> Result<Self, String> {
        let Examples {
            vectors, labels, ..
        } = examples;
        if vectors.len() != labels.len() || vectors.is_empty() {
            return Err("no training examples (or not one vector per label)".into());
        }
        let mut names: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        names.sort();
        names.dedup();
        if names.iter().filter(|n| **n != config.oos_label).count() < 2 {
            return Err("at least two intents are needed".into());
        }
        let index = |l: &str| names.binary_search_by(|n| n.as_str().cmp(l)).ok();
        let y: Vec<usize> = labels.iter().filter_map(|l| index(l)).collect();
        let (x, dims) = flatten(vectors);
        let fit = |x: &[f32], y: &[usize]| Softmax::train(x, y, names.len(), dims, config.train);
        let oos_class = index(&config.oos_label);
        let mut model = Self {
            labels: names.clone(),
            oos_class,
            oos_label: config.oos_label.clone(),
            model: fit(&x, &y),
            threshold: None,
            alternatives: config.alternatives,
        };
        // Calibration: on the validation examples, or else on a held-out fifth of the training
        // examples (a model fitted on the other four fifths), when there are out-of-scope ones.
        let points: Vec<(f32, bool, bool)> = match valid {
            Some(v) => v
                .vectors
                .iter()
                .zip(v.labels)
                .map(|(v, l)| model.calibration_point(v, l))
                .collect(),
            None if oos_class.is_some() => {
                let held: Vec<usize> = (0..y.len()).filter(|i| i % 5 == 4).collect();
                let kept: Vec<usize> = (0..y.len()).filter(|i| i % 5 != 4).collect();
                let (kx, _) =
                    flatten(&kept.iter().map(|&i| vectors[i].clone()).collect::<Vec<_>>());
                let ky: Vec<usize> = kept.iter().map(|&i| y[i]).collect();
                let probe = Self {
                    model: fit(&kx, &ky),
                    ..model.clone()
                };
                held.iter()
                    .map(|&i| probe.calibration_point(&vectors[i], labels[i]))
                    .collect()
            }
            None => Vec::new(),
        };
        model.threshold = choose_threshold(&points);
        Ok(model)
    }

    fn calibration_point(&self, vector: &[f32], label: &str) -> (f32, bool, bool) {
        let (best, confidence) = self.best_in_scope(vector);
        let is_oos = label == self.oos_label;
        (confidence, is_oos, !is_oos && self.labels[best] == label)
    }

    /// In-scope probabilities, renormalised without the out-of-scope class.
    fn in_scope(&self, vector: &[f32]) -> Vec<(usize, f32)> {
        let p = self.model.probabilities(vector, 1);
        p.into_iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.oos_class)
            .collect()
    }

    /// The best in-scope class and its probability (out of all classes, the out-of-scope
    /// class included, so probability mass it takes lowers the confidence).
    fn best_in_scope(&self, vector: &[f32]) -> (usize, f32) {
        self.in_scope(vector)
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0))
    }

    pub fn predict(&self, _text: &str, vector: &[f32]) -> Prediction {
        let mut ranked = self.in_scope(vector);
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (best, confidence) = ranked.first().copied().unwrap_or((0, 0.0));
        let out_of_scope = self.threshold.is_some_and(|t| confidence < t);
        Prediction {
            intent: (!out_of_scope).then(|| self.labels[best].clone()),
            confidence,
            alternatives: ranked
                .iter()
                .take(self.alternatives)
                .map(|(i, p)| (self.labels[*i].clone(), *p))
                .collect(),
            oos_score: 1.0 - confidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn threshold_balances_in_scope_accuracy_and_oos_recall() {
        // In-scope confident and right; out-of-scope unsure.
        let points = vec![
            (0.9, false, true),
            (0.8, false, true),
            (0.7, false, false),
            (0.3, true, false),
            (0.4, true, false),
            (0.75, true, false),
        ];
        // Between 0.75 and 0.8 every out-of-scope message is caught and the two right
        // in-scope answers stay: (1 + 2/3) / 2, the best balance.
        let t = choose_threshold(&points).unwrap();
        assert!(t > 0.75 && t <= 0.8, "{t}");
        assert_eq!(choose_threshold(&points[..3]), None);
    }

    #[test]
    fn trains_predicts_and_calibrates_out_of_scope() {
        let mut vectors = Vec::new();
        let mut labels = Vec::new();
        for k in 0..40 {
            let j = (k % 7) as f32 * 0.05;
            vectors.push(unit(&[1.0, j, 0.0, 0.1]));
            labels.push("refund");
            vectors.push(unit(&[j, 1.0, 0.0, 0.1]));
            labels.push("delivery");
            vectors.push(unit(&[0.1, 0.1, 1.0, j]));
            labels.push("oos");
        }
        let texts = vec![""; labels.len()];
        let examples = Examples {
            texts: &texts,
            vectors: &vectors,
            labels: &labels,
        };
        let model = IntentModel::train(examples, None, &IntentConfig::default()).expect("train");
        assert!(model.threshold.is_some(), "calibrated on a held-out fifth");
        let p = model.predict("", &unit(&[1.0, 0.02, 0.0, 0.1]));
        assert_eq!(p.intent.as_deref(), Some("refund"));
        assert_eq!(p.alternatives[0].0, "refund");
        assert!(p.confidence > 0.5);
        let off = model.predict("", &unit(&[0.1, 0.1, 1.0, 0.1]));
        assert_eq!(off.intent, None);
        assert!(off.oos_score > p.oos_score);
        let restored: IntentModel =
            serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
        assert_eq!(restored, model);
    }
}
