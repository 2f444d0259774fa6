//! A BERT encoder in plain Rust (matrix products by `matrixmultiply`), for models a user brings:
//! any BERT-style checkpoint given as `config.json` + `model.safetensors` (+ `tokenizer.json`),
//! whatever its size. The local embedding model runs on ONNX Runtime with a graph made for its
//! exact shape; a user's cross-encoder has a shape known only at run time, so it runs here.
//!
//! One sequence at a time, without padding (so no attention mask is needed); callers
//! parallelise across sequences. Checked against the reference all-MiniLM-L6-v2 vectors in
//! `tests/local.rs` (the same weights through this encoder, mean-pooled).

use concierge_knowledge::embed::EmbedError;
use std::collections::HashMap;
use std::path::Path;

fn err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError(e.to_string())
}

/// The fields of a Hugging Face `config.json` this encoder uses.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Present on `*ForSequenceClassification` checkpoints.
    #[serde(default)]
    pub id2label: Option<HashMap<String, String>>,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f32 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

impl BertConfig {
    pub fn from_file(path: &Path) -> Result<Self, EmbedError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EmbedError(format!("cannot read {}: {e}", path.display())))?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|e| EmbedError(format!("{} is not a BERT config: {e}", path.display())))?;
        if let Some(t) = &config.model_type
            && !matches!(t.as_str(), "bert" | "distilbert-like" | "electra")
        {
            return Err(EmbedError(format!(
                "{}: model_type {t:?} is not BERT-style (bert, electra)",
                path.display()
            )));
        }
        if config.hidden_size == 0
            || config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(EmbedError(format!(
                "{}: hidden_size {} is not a multiple of num_attention_heads {}",
                path.display(),
                config.hidden_size,
                config.num_attention_heads
            )));
        }
        if !matches!(
            config.hidden_act.as_str(),
            "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu"
        ) {
            return Err(EmbedError(format!(
                "{}: hidden_act {:?} is not supported (gelu, gelu_new, relu)",
                path.display(),
                config.hidden_act
            )));
        }
        Ok(config)
    }
}

/// The tensors of a safetensors file, as f32 (F32, F16 and BF16 are read; others skipped).
pub struct Tensors {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

#[derive(serde::Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exp = (bits >> 10) & 0x1f;
    let frac = u32::from(bits & 0x3ff);
    let out = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((u32::from(exp) + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(out)
}

impl Tensors {
    pub fn from_file(path: &Path) -> Result<Self, EmbedError> {
        let bytes = std::fs::read(path)
            .map_err(|e| EmbedError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_bytes(&bytes).map_err(|e| EmbedError(format!("{}: {}", path.display(), e.0)))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmbedError> {
        let bad = || EmbedError("not a safetensors file".into());
        let n =
            u64::from_le_bytes(bytes.get(..8).ok_or_else(bad)?.try_into().map_err(err)?) as usize;
        let header = bytes.get(8..8 + n).ok_or_else(bad)?;
        let data = &bytes[8 + n..];
        let infos: HashMap<String, serde_json::Value> =
            serde_json::from_slice(header).map_err(|_| bad())?;
        let mut tensors = HashMap::new();
        for (name, value) in infos {
            if name == "__metadata__" {
                continue;
            }
            let info: TensorInfo = serde_json::from_value(value).map_err(err)?;
            let raw = data
                .get(info.data_offsets.0..info.data_offsets.1)
                .ok_or_else(|| EmbedError(format!("tensor {name} lies outside the file")))?;
            let values: Vec<f32> = match info.dtype.as_str() {
                "F32" => raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                "F16" => raw
                    .chunks_exact(2)
                    .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                    .collect(),
                "BF16" => raw
                    .chunks_exact(2)
                    .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                    .collect(),
                _ => continue,
            };
            if values.len() != info.shape.iter().product::<usize>() {
                return Err(EmbedError(format!(
                    "tensor {name}: size does not match its shape"
                )));
            }
            tensors.insert(name, (info.shape, values));
        }
        Ok(Self { tensors })
    }

    /// The tensor `name` (tried with each prefix in turn), checked against `shape`.
    fn take(
        &mut self,
        prefixes: &[&str],
        name: &str,
        shape: &[usize],
    ) -> Result<Vec<f32>, EmbedError> {
        for p in prefixes {
            let full = format!("{p}{name}");
            if let Some((s, v)) = self.tensors.remove(&full) {
                if s != shape {
                    return Err(EmbedError(format!(
                        "tensor {full} has shape {s:?}, expected {shape:?}"
                    )));
                }
                return Ok(v);
            }
        }
        Err(EmbedError(format!("tensor {name} is missing")))
    }

    /// Like [`Self::take`], also under the old `gamma`/`beta` names of LayerNorm weights.
    fn take_norm(
        &mut self,
        prefixes: &[&str],
        name: &str,
        h: usize,
    ) -> Result<LayerNorm, EmbedError> {
        let weight = self
            .take(prefixes, &format!("{name}.weight"), &[h])
            .or_else(|_| self.take(prefixes, &format!("{name}.gamma"), &[h]))?;
        let bias = self
            .take(prefixes, &format!("{name}.bias"), &[h])
            .or_else(|_| self.take(prefixes, &format!("{name}.beta"), &[h]))?;
        Ok(LayerNorm { weight, bias })
    }

    fn take_linear(
        &mut self,
        prefixes: &[&str],
        name: &str,
        out: usize,
        inp: usize,
    ) -> Result<Linear, EmbedError> {
        Ok(Linear {
            weight: self.take(prefixes, &format!("{name}.weight"), &[out, inp])?,
            bias: self.take(prefixes, &format!("{name}.bias"), &[out])?,
            out,
            inp,
        })
    }
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl LayerNorm {
    fn apply(&self, x: &mut [f32], h: usize, eps: f32) {
        for row in x.chunks_exact_mut(h) {
            let mean = row.iter().sum::<f32>() / h as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

/// A PyTorch `Linear`: `weight` is `[out, in]`, `y = x Wᵀ + b`.
struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    out: usize,
    inp: usize,
}

impl Linear {
    /// `x` is `[rows, in]`; returns `[rows, out]`.
    fn apply(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut y: Vec<f32> = Vec::with_capacity(rows * self.out);
        for _ in 0..rows {
            y.extend_from_slice(&self.bias);
        }
        // SAFETY: the pointers cover `rows × in`, `in × out` (Wᵀ through strides) and
        // `rows × out` elements, as the dimensions and strides passed say.
        unsafe {
            matrixmultiply::sgemm(
                rows,
                self.inp,
                self.out,
                1.0,
                x.as_ptr(),
                self.inp as isize,
                1,
                self.weight.as_ptr(),
                1,
                self.inp as isize,
                1.0,
                y.as_mut_ptr(),
                self.out as isize,
                1,
            );
        }
        y
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A loaded BERT encoder.
pub struct Bert {
    pub config: BertConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    vocab: usize,
}

/// Prefixes under which BERT weights are stored: bare (`BertModel`), `bert.`
/// (`BertForSequenceClassification`), `electra.`.
const PREFIXES: &[&str] = &["", "bert.", "electra."];

fn erf(x: f32) -> f32 {
    // Abramowitz & Stegun 7.1.26 in f64: absolute error below 1.5e-7.
    let x = f64::from(x);
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    (if x >= 0.0 { y } else { -y }) as f32
}

impl Bert {
    /// The encoder's weights from `tensors` (taken out of it; a classification head may remain).
    pub fn from_tensors(config: BertConfig, tensors: &mut Tensors) -> Result<Self, EmbedError> {
        let h = config.hidden_size;
        let word_shape = PREFIXES
            .iter()
            .find_map(|p| {
                tensors
                    .tensors
                    .get(&format!("{p}embeddings.word_embeddings.weight"))
            })
            .map(|(s, _)| s.clone())
            .ok_or_else(|| {
                EmbedError("tensor embeddings.word_embeddings.weight is missing".into())
            })?;
        let vocab = word_shape.first().copied().unwrap_or(0);
        let word = tensors.take(PREFIXES, "embeddings.word_embeddings.weight", &[vocab, h])?;
        let position = tensors.take(
            PREFIXES,
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_type = tensors.take(
            PREFIXES,
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let embeddings_norm = tensors.take_norm(PREFIXES, "embeddings.LayerNorm", h)?;
        let i = config.intermediate_size;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = |s: &str| format!("encoder.layer.{l}.{s}");
            layers.push(Layer {
                query: tensors.take_linear(PREFIXES, &p("attention.self.query"), h, h)?,
                key: tensors.take_linear(PREFIXES, &p("attention.self.key"), h, h)?,
                value: tensors.take_linear(PREFIXES, &p("attention.self.value"), h, h)?,
                attention_out: tensors.take_linear(PREFIXES, &p("attention.output.dense"), h, h)?,
                attention_norm: tensors.take_norm(PREFIXES, &p("attention.output.LayerNorm"), h)?,
                intermediate: tensors.take_linear(PREFIXES, &p("intermediate.dense"), i, h)?,
                output: tensors.take_linear(PREFIXES, &p("output.dense"), h, i)?,
                output_norm: tensors.take_norm(PREFIXES, &p("output.LayerNorm"), h)?,
            });
        }
        Ok(Self {
            config,
            word,
            position,
            token_type,
            embeddings_norm,
            layers,
            vocab,
        })
    }

    fn activation(&self, x: &mut [f32]) {
        match self.config.hidden_act.as_str() {
            "relu" => x.iter_mut().for_each(|v| *v = v.max(0.0)),
            "gelu_new" | "gelu_pytorch_tanh" => x.iter_mut().for_each(|v| {
                let c = (2.0f32 / std::f32::consts::PI).sqrt();
                *v = 0.5 * *v * (1.0 + (c * (*v + 0.044_715 * *v * *v * *v)).tanh());
            }),
            _ => x
                .iter_mut()
                .for_each(|v| *v = 0.5 * *v * (1.0 + erf(*v / std::f32::consts::SQRT_2))),
        }
    }

    /// The last hidden state `[tokens, hidden]` of one sequence.
    pub fn forward(&self, ids: &[u32], type_ids: &[u32]) -> Result<Vec<f32>, EmbedError> {
        let h = self.config.hidden_size;
        let n = ids.len();
        if n == 0 || n > self.config.max_position_embeddings {
            return Err(EmbedError(format!(
                "{n} tokens: the model takes 1 to {}",
                self.config.max_position_embeddings
            )));
        }
        let mut x = vec![0f32; n * h];
        for (t, (&id, &ty)) in ids.iter().zip(type_ids).enumerate() {
            let (id, ty) = (id as usize, ty as usize);
            if id >= self.vocab || ty >= self.config.type_vocab_size {
                return Err(EmbedError(format!(
                    "token {id} (type {ty}) is outside the vocabulary"
                )));
            }
            let row = &mut x[t * h..(t + 1) * h];
            for (k, v) in row.iter_mut().enumerate() {
                *v = self.word[id * h + k] + self.position[t * h + k] + self.token_type[ty * h + k];
            }
        }
        let eps = self.config.layer_norm_eps;
        self.embeddings_norm.apply(&mut x, h, eps);
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut scores = vec![0f32; n * n];
        for layer in &self.layers {
            let q = layer.query.apply(&x, n);
            let k = layer.key.apply(&x, n);
            let v = layer.value.apply(&x, n);
            let mut context = vec![0f32; n * h];
            for head in 0..heads {
                let off = head * d;
                // SAFETY: Q and K are `n × h`; the head's columns `off..off + d` are read with
                // row stride `h`; `scores` is `n × n`.
                unsafe {
                    matrixmultiply::sgemm(
                        n,
                        d,
                        n,
                        scale,
                        q.as_ptr().add(off),
                        h as isize,
                        1,
                        k.as_ptr().add(off),
                        1,
                        h as isize,
                        0.0,
                        scores.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
                for row in scores.chunks_exact_mut(n) {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0;
                    for s in row.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    row.iter_mut().for_each(|s| *s /= sum);
                }
                // SAFETY: `scores` is `n × n`, V's head columns are `n × d` with row stride
                // `h`, and the context's head columns are written with the same layout.
                unsafe {
                    matrixmultiply::sgemm(
                        n,
                        n,
                        d,
                        1.0,
                        scores.as_ptr(),
                        n as isize,
                        1,
                        v.as_ptr().add(off),
                        h as isize,
                        1,
                        0.0,
                        context.as_mut_ptr().add(off),
                        h as isize,
                        1,
                    );
                }
            }
            let mut attended = layer.attention_out.apply(&context, n);
            attended.iter_mut().zip(&x).for_each(|(a, r)| *a += r);
            layer.attention_norm.apply(&mut attended, h, eps);
            let mut inner = layer.intermediate.apply(&attended, n);
            self.activation(&mut inner);
            let mut out = layer.output.apply(&inner, n);
            out.iter_mut().zip(&attended).for_each(|(o, r)| *o += r);
            layer.output_norm.apply(&mut out, h, eps);
            x = out;
        }
        Ok(x)
    }
}

/// The sequence-classification head of a cross-encoder: `pooler` (dense + tanh on the first
/// token; absent in ELECTRA-style heads, which use the first token directly) and `classifier`.
pub struct ClassificationHead {
    pooler: Option<Linear>,
    classifier: Linear,
}

impl ClassificationHead {
    pub fn from_tensors(h: usize, tensors: &mut Tensors) -> Result<Self, EmbedError> {
        let pooler = tensors.take_linear(PREFIXES, "pooler.dense", h, h).ok();
        let labels = tensors
            .tensors
            .get("classifier.weight")
            .map(|(s, _)| s.first().copied().unwrap_or(0))
            .ok_or_else(|| {
                EmbedError(
                    "tensor classifier.weight is missing: not a sequence-classification \
                     (cross-encoder) checkpoint"
                        .into(),
                )
            })?;
        let classifier = tensors.take_linear(&[""], "classifier", labels, h)?;
        Ok(Self { pooler, classifier })
    }

    /// The relevance score from a last hidden state: the single logit, or for two labels the
    /// difference of "relevant" (the second) over "not relevant" (the first).
    pub fn score(&self, hidden: &[f32]) -> f32 {
        let h = self.classifier.inp;
        let mut first = hidden[..h].to_vec();
        if let Some(pooler) = &self.pooler {
            first = pooler.apply(&first, 1);
            first.iter_mut().for_each(|v| *v = v.tanh());
        }
        let logits = self.classifier.apply(&first, 1);
        match logits.as_slice() {
            [one] => *one,
            [no, yes, ..] => yes - no,
            [] => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_decodes() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert!((f16_to_f32(0x0001) - 5.960_464_5e-8).abs() < 1e-12);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 1e-6, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn linear_is_x_times_w_transposed_plus_bias() {
        let l = Linear {
            weight: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], // [out 2, in 3]
            bias: vec![0.5, -1.0],
            out: 2,
            inp: 3,
        };
        let y = l.apply(&[1.0, 0.0, -1.0, 2.0, 1.0, 0.0], 2);
        assert_eq!(
            y,
            vec![
                1.0 - 3.0 + 0.5,
                4.0 - 6.0 - 1.0,
                2.0 + 2.0 + 0.5,
                8.0 + 5.0 - 1.0
            ]
        );
    }
}
