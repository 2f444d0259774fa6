//! Lexical features for the intent engine: TF-IDF over word unigrams and bigrams (sublinear
//! term frequency, smoothed IDF, L2-normalised rows, terms seen in at least two examples) and a
//! softmax regression over them, trained by the same L-BFGS as the dense classifier. Sentence
//! vectors blur exact wording ("card" vs "card declined"); the words keep it, and the two
//! models' errors differ, so their geometric blend beats either (docs/evaluation.md).

use crate::linear::{lbfgs, softmax_rows};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Word tokens: lower-cased runs of letters and digits of two characters or more.
pub fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.chars().count() >= 2)
        .map(str::to_string)
        .collect()
}

/// Unigrams and bigrams of a text.
fn terms(text: &str) -> Vec<String> {
    let words = tokens(text);
    let mut out = words.clone();
    out.extend(words.windows(2).map(|w| format!("{} {}", w[0], w[1])));
    out
}

/// A fitted TF-IDF vocabulary (stored as its terms and IDFs; the index is rebuilt on load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "TfidfData", into = "TfidfData")]
pub struct Tfidf {
    /// Terms in column order.
    pub terms: Vec<String>,
    pub idf: Vec<f32>,
    index: HashMap<String, u32>,
}

#[derive(Serialize, Deserialize)]
struct TfidfData {
    terms: Vec<String>,
    idf: Vec<f32>,
}

impl From<TfidfData> for Tfidf {
    fn from(d: TfidfData) -> Self {
        let mut t = Tfidf {
            terms: d.terms,
            idf: d.idf,
            index: HashMap::new(),
        };
        t.reindex();
        t
    }
}

impl From<Tfidf> for TfidfData {
    fn from(t: Tfidf) -> Self {
        TfidfData {
            terms: t.terms,
            idf: t.idf,
        }
    }
}

impl Tfidf {
    /// Terms of at least `min_df` texts; `idf = ln((1 + n) / (1 + df)) + 1`.
    pub fn fit(texts: &[&str], min_df: usize) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        for t in texts {
            let mut seen = terms(t);
            seen.sort();
            seen.dedup();
            for term in seen {
                *df.entry(term).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, usize)> = df.into_iter().filter(|(_, d)| *d >= min_df).collect();
        kept.sort();
        let n = texts.len() as f32;
        let idf = kept
            .iter()
            .map(|(_, d)| ((1.0 + n) / (1.0 + *d as f32)).ln() + 1.0)
            .collect();
        let mut out = Self {
            terms: kept.into_iter().map(|(t, _)| t).collect(),
            idf,
            index: HashMap::new(),
        };
        out.reindex();
        out
    }

    fn reindex(&mut self) {
        self.index = self
            .terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
    }

    pub fn dims(&self) -> usize {
        self.terms.len()
    }

    /// The text's sparse row: `(column, weight)`, L2-normalised; unknown terms are dropped.
    pub fn transform(&self, text: &str) -> Vec<(u32, f32)> {
        let mut counts: HashMap<u32, f32> = HashMap::new();
        for term in terms(text) {
            if let Some(&i) = self.index.get(&term) {
                *counts.entry(i).or_default() += 1.0;
            }
        }
        let mut row: Vec<(u32, f32)> = counts
            .into_iter()
            .map(|(i, c)| (i, (1.0 + c.ln()) * self.idf[i as usize]))
            .collect();
        row.sort_by_key(|(i, _)| *i);
        let norm = row.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, w)| *w /= norm);
        }
        row
    }
}

/// Softmax regression over sparse rows; weights stored feature-major (`[dims × classes]`), so a
/// row's logits are a sum of a few contiguous weight rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseSoftmax {
    pub classes: usize,
    pub dims: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

impl SparseSoftmax {
    fn logits_into(w: &[f32], b: &[f32], classes: usize, row: &[(u32, f32)], out: &mut [f32]) {
        out.copy_from_slice(b);
        for &(j, x) in row {
            let wj = &w[j as usize * classes..(j as usize + 1) * classes];
            out.iter_mut().zip(wj).for_each(|(o, wv)| *o += x * wv);
        }
    }

    /// Fits `mean cross-entropy + l2/2 · |W|²` by L-BFGS.
    pub fn train(
        rows: &[Vec<(u32, f32)>],
        y: &[usize],
        classes: usize,
        dims: usize,
        l2: f32,
        max_iterations: usize,
    ) -> Self {
        let n = rows.len().max(1) as f32;
        let nw = dims * classes;
        let params = lbfgs(
            vec![0.0; nw + classes],
            |p, g| {
                let (w, b) = p.split_at(nw);
                g.iter_mut().for_each(|v| *v = 0.0);
                let mut loss = 0.0f32;
                let mut z = vec![0.0f32; classes];
                for (row, &label) in rows.iter().zip(y) {
                    Self::logits_into(w, b, classes, row, &mut z);
                    softmax_rows(&mut z, classes);
                    loss -= z[label].max(1e-12).ln();
                    z[label] -= 1.0;
                    let (gw, gb) = g.split_at_mut(nw);
                    for &(j, x) in row {
                        let gj = &mut gw[j as usize * classes..(j as usize + 1) * classes];
                        gj.iter_mut().zip(&z).for_each(|(gv, d)| *gv += x * d / n);
                    }
                    gb.iter_mut().zip(&z).for_each(|(gv, d)| *gv += d / n);
                }
                let mut reg = 0.0f32;
                for (gv, wv) in g[..nw].iter_mut().zip(w) {
                    *gv += l2 * wv;
                    reg += wv * wv;
                }
                loss / n + 0.5 * l2 * reg
            },
            max_iterations,
            1e-5,
        );
        let (w, b) = params.split_at(nw);
        Self {
            classes,
            dims,
            weights: w.to_vec(),
            bias: b.to_vec(),
        }
    }

    pub fn probabilities(&self, row: &[(u32, f32)]) -> Vec<f32> {
        let mut z = vec![0.0; self.classes];
        Self::logits_into(&self.weights, &self.bias, self.classes, row, &mut z);
        softmax_rows(&mut z, self.classes);
        z
    }
}

/// The lexical half of the intent engine and its share in the geometric blend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lexical {
    pub tfidf: Tfidf,
    pub model: SparseSoftmax,
    /// `p ∝ p_dense^(1-weight) · p_lexical^weight`.
    pub weight: f32,
}

/// Inverse L2 strength of the lexical model in scikit-learn's terms (`C`): the penalty per
/// example is `1 / (C · n)`.
const LEXICAL_C: f32 = 10.0;

impl Lexical {
    /// `None` when no term occurs twice (nothing to learn from the words).
    pub fn train(texts: &[&str], y: &[usize], classes: usize, weight: f32) -> Option<Self> {
        let tfidf = Tfidf::fit(texts, 2);
        if tfidf.dims() == 0 {
            return None;
        }
        let rows: Vec<Vec<(u32, f32)>> = texts.iter().map(|t| tfidf.transform(t)).collect();
        let l2 = 1.0 / (LEXICAL_C * texts.len().max(1) as f32);
        let model = SparseSoftmax::train(&rows, y, classes, tfidf.dims(), l2, 300);
        Some(Self {
            tfidf,
            model,
            weight,
        })
    }

    /// Blends the dense classifier's probabilities `p` with this model's for `text`, in place.
    pub fn blend(&self, text: &str, p: &mut [f32]) {
        let q = self.model.probabilities(&self.tfidf.transform(text));
        let mut sum = 0.0;
        for (pi, qi) in p.iter_mut().zip(q) {
            *pi = ((1.0 - self.weight) * pi.max(1e-9).ln() + self.weight * qi.max(1e-9).ln()).exp();
            sum += *pi;
        }
        if sum > 0.0 {
            p.iter_mut().for_each(|v| *v /= sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tfidf_rows_are_unit_length_and_keep_known_terms_only() {
        let texts = [
            "my card declined twice",
            "card declined at the shop",
            "where is my parcel",
            "parcel not delivered",
        ];
        let t = Tfidf::fit(&texts, 2);
        assert!(
            t.terms.contains(&"card declined".to_string()),
            "{:?}",
            t.terms
        );
        assert!(!t.terms.contains(&"shop".to_string()), "seen once");
        let row = t.transform("Card declined!!");
        let norm: f32 = row.iter().map(|(_, w)| w * w).sum();
        assert!((norm - 1.0).abs() < 1e-5, "{row:?}");
        assert!(t.transform("completely unknown words").is_empty());
    }

    #[test]
    fn the_sparse_model_learns_words_and_blends_geometrically() {
        let texts: Vec<String> = (0..30)
            .flat_map(|i| {
                [
                    format!("my card was declined today {i}"),
                    format!("card declined again {i}"),
                    format!("where is my parcel {i}"),
                    format!("parcel still not here {i}"),
                ]
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let y: Vec<usize> = (0..refs.len()).map(|i| usize::from(i % 4 >= 2)).collect();
        let lex = Lexical::train(&refs, &y, 2, 0.5).unwrap();
        assert!(
            Lexical::train(&["a", "b"], &[0, 1], 2, 0.5).is_none(),
            "no terms"
        );
        let p = lex
            .model
            .probabilities(&lex.tfidf.transform("my card got declined"));
        assert!(p[0] > 0.8, "{p:?}");
        // A dense model unsure between the two: the words tip it.
        let mut blended = vec![0.5, 0.5];
        lex.blend("the parcel", &mut blended);
        assert!(blended[1] > 0.7 && (blended.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let restored: Lexical =
            serde_json::from_str(&serde_json::to_string(&lex).unwrap()).unwrap();
        assert_eq!(
            restored
                .model
                .probabilities(&restored.tfidf.transform("card declined")),
            lex.model
                .probabilities(&lex.tfidf.transform("card declined"))
        );
    }
}
