//! Checkpoints in the safetensors format (readable by PyTorch, candle and burn): a network's
//! parameters by name, and optionally the training state (optimizer moments, epoch, shuffle
//! seed) so training resumes exactly. Saves are atomic: a temporary file in the same folder is
//! written, flushed to disk and renamed over the old checkpoint, so a failed or interrupted save
//! leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use tapegrad_tensor::{Float, Tensor};

use crate::error::{NnError, Result};
use crate::network::Network;
use crate::optim::{Optimizer, OptimizerKind};
use crate::params::ParamId;
use crate::train::TrainState;

const FIRST: &str = "__optimizer.first.";
const SECOND: &str = "__optimizer.second.";

fn dtype<E: Float>() -> Dtype {
    if E::DTYPE == "f32" {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

fn to_bytes<E: Float>(t: &Tensor<E>) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len() * if E::DTYPE == "f32" { 4 } else { 8 });
    for &v in t.as_slice() {
        if E::DTYPE == "f32" {
            out.extend_from_slice(&(v.to_f64() as f32).to_le_bytes());
        } else {
            out.extend_from_slice(&v.to_f64().to_le_bytes());
        }
    }
    out
}

fn from_view<E: Float>(view: &TensorView<'_>) -> Result<Tensor<E>, String> {
    let data = view.data();
    let values: Vec<E> = match view.dtype() {
        Dtype::F32 if E::DTYPE == "f32" => data
            .chunks_exact(4)
            .map(|c| E::from_f64(f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64))
            .collect(),
        Dtype::F64 if E::DTYPE == "f64" => data
            .chunks_exact(8)
            .map(|c| E::from_f64(f64::from_le_bytes(c.try_into().expect("8 bytes"))))
            .collect(),
        other => return Err(format!("dtype {other:?}, the network holds {}", E::DTYPE)),
    };
    Tensor::from_vec(values, view.shape()).map_err(|e| e.to_string())
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed and synced, then
/// renamed over `path`. On any failure the temporary file is removed and `path` is untouched.
///
/// # Errors
///
/// [`NnError::Io`] naming the file that could not be written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, |file, bytes| file.write_all(bytes))
}

/// [`write_atomic`] with the write itself supplied, so tests can fail it part-way.
fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    write: impl FnOnce(&mut File, &[u8]) -> std::io::Result<()>,
) -> Result<()> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| NnError::Io { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        write(&mut file, bytes).map_err(io(&tmp))?;
        file.flush().map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        // Make the rename itself durable where the platform allows syncing a folder.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn serialize<E: Float>(
    tensors: Vec<(String, Vec<u8>, Vec<usize>)>,
    metadata: HashMap<String, String>,
    path: &Path,
) -> Result<Vec<u8>> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, bytes, shape)| {
            TensorView::new(dtype::<E>(), shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| checkpoint_error(path, format!("tensor {name}: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| checkpoint_error(path, e.to_string()))
}

fn checkpoint_error(path: &Path, reason: String) -> NnError {
    NnError::Checkpoint {
        file: path.display().to_string(),
        reason,
    }
}

fn param_tensors<E: Float>(net: &Network<E>) -> Vec<(String, Vec<u8>, Vec<usize>)> {
    net.params
        .iter()
        .map(|(_, p)| {
            (
                p.name.to_string(),
                to_bytes(&p.value),
                p.value.shape().to_vec(),
            )
        })
        .collect()
}

/// Saves a network's parameters, by name, to a safetensors file (atomically).
///
/// # Errors
///
/// [`NnError::Io`] when the file cannot be written; the previous file is then left intact.
pub fn save_params<E: Float>(path: impl AsRef<Path>, net: &Network<E>) -> Result<()> {
    let path = path.as_ref();
    let bytes = serialize::<E>(param_tensors(net), HashMap::new(), path)?;
    write_atomic(path, &bytes)
}

/// Saves the parameters and the training state (optimizer state, epoch, shuffle seed).
///
/// # Errors
///
/// As [`save_params`].
pub fn save_checkpoint<E: Float>(
    path: impl AsRef<Path>,
    net: &Network<E>,
    state: &TrainState<E>,
) -> Result<()> {
    let path = path.as_ref();
    let mut tensors = param_tensors(net);
    for (id, p) in net.params.iter() {
        let (first, second) = state.optimizer.state(id);
        if let Some(t) = first {
            tensors.push((
                format!("{FIRST}{}", p.name),
                to_bytes(t),
                t.shape().to_vec(),
            ));
        }
        if let Some(t) = second {
            tensors.push((
                format!("{SECOND}{}", p.name),
                to_bytes(t),
                t.shape().to_vec(),
            ));
        }
    }
    let mut meta = HashMap::new();
    meta.insert("epoch".into(), state.epoch.to_string());
    meta.insert("shuffle_seed".into(), state.shuffle_seed.to_string());
    meta.insert("optimizer.steps".into(), state.optimizer.steps.to_string());
    match state.optimizer.kind {
        OptimizerKind::Sgd {
            momentum,
            weight_decay,
            nesterov,
        } => {
            meta.insert("optimizer".into(), "sgd".into());
            meta.insert("optimizer.momentum".into(), momentum.to_string());
            meta.insert("optimizer.weight_decay".into(), weight_decay.to_string());
            meta.insert("optimizer.nesterov".into(), nesterov.to_string());
        }
        OptimizerKind::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            meta.insert("optimizer".into(), "adam".into());
            meta.insert("optimizer.beta1".into(), beta1.to_string());
            meta.insert("optimizer.beta2".into(), beta2.to_string());
            meta.insert("optimizer.eps".into(), eps.to_string());
            meta.insert("optimizer.weight_decay".into(), weight_decay.to_string());
        }
    }
    let bytes = serialize::<E>(tensors, meta, path)?;
    write_atomic(path, &bytes)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Checks every parameter of `net` against the file and returns the new values by id; lists
/// every mismatch (missing, extra, wrong shape, wrong dtype) in one error.
fn matched_params<E: Float>(
    file: &SafeTensors<'_>,
    net: &Network<E>,
    path: &Path,
) -> Result<Vec<(ParamId, Tensor<E>)>> {
    let mut problems = Vec::new();
    let mut values = Vec::new();
    for (id, p) in net.params.iter() {
        match file.tensor(&p.name) {
            Err(_) => problems.push(format!("missing parameter {}", p.name)),
            Ok(view) if view.shape() != p.value.shape() => problems.push(format!(
                "parameter {} has shape {:?} in the file, the network needs {:?}",
                p.name,
                view.shape(),
                p.value.shape()
            )),
            Ok(view) => match from_view::<E>(&view) {
                Ok(t) => values.push((id, t)),
                Err(e) => problems.push(format!("parameter {}: {e}", p.name)),
            },
        }
    }
    for name in file.names() {
        if !name.starts_with("__optimizer.") && net.params.find(name).is_none() {
            problems.push(format!(
                "unexpected tensor {name} (not a parameter of this network)"
            ));
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        problems.sort();
        Err(checkpoint_error(path, problems.join("; ")))
    }
}

fn parse_file<'a>(bytes: &'a [u8], path: &Path) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes)
        .map_err(|e| checkpoint_error(path, format!("not a valid safetensors file: {e}")))
}

/// Loads parameters saved by [`save_params`] or [`save_checkpoint`] into `net`, checking every
/// name, shape and dtype first: on any mismatch nothing is changed.
///
/// # Errors
///
/// [`NnError::Io`] when the file cannot be read; [`NnError::Checkpoint`] naming the file and
/// every mismatch, or what is wrong with a truncated or corrupted file.
pub fn load_params<E: Float>(path: impl AsRef<Path>, net: &mut Network<E>) -> Result<()> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let file = parse_file(&bytes, path)?;
    for (id, t) in matched_params(&file, net, path)? {
        net.params
            .get_mut(id)
            .expect("matched ids come from this network")
            .value = t;
    }
    Ok(())
}

/// Loads a checkpoint written by [`save_checkpoint`]: the parameters into `net`, and the
/// training state to pass to [`crate::train_from`].
///
/// # Errors
///
/// As [`load_params`], and [`NnError::Checkpoint`] when the training state is missing or
/// malformed.
pub fn load_checkpoint<E: Float>(
    path: impl AsRef<Path>,
    net: &mut Network<E>,
) -> Result<TrainState<E>> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let file = parse_file(&bytes, path)?;
    let params = matched_params(&file, net, path)?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| checkpoint_error(path, format!("not a valid safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |key: &str| -> Result<&String> {
        meta.get(key)
            .ok_or_else(|| checkpoint_error(path, format!("no training state: missing {key:?}")))
    };
    fn parse<T: std::str::FromStr>(path: &Path, key: &str, v: &str) -> Result<T> {
        v.parse()
            .map_err(|_| checkpoint_error(path, format!("malformed {key:?}: {v:?}")))
    }
    let num = |key: &str| -> Result<f64> { parse(path, key, get(key)?) };
    let kind = match get("optimizer")?.as_str() {
        "sgd" => OptimizerKind::Sgd {
            momentum: num("optimizer.momentum")?,
            weight_decay: num("optimizer.weight_decay")?,
            nesterov: parse(path, "optimizer.nesterov", get("optimizer.nesterov")?)?,
        },
        "adam" => OptimizerKind::Adam {
            beta1: num("optimizer.beta1")?,
            beta2: num("optimizer.beta2")?,
            eps: num("optimizer.eps")?,
            weight_decay: num("optimizer.weight_decay")?,
        },
        other => {
            return Err(checkpoint_error(
                path,
                format!("unknown optimizer {other:?}"),
            ));
        }
    };
    let mut optimizer = Optimizer::new(kind)?;
    optimizer.steps = parse(path, "optimizer.steps", get("optimizer.steps")?)?;
    for (id, p) in net.params.iter() {
        let load = |prefix: &str| -> Result<Option<Tensor<E>>> {
            match file.tensor(&format!("{prefix}{}", p.name)) {
                Err(_) => Ok(None),
                Ok(view) if view.shape() != p.value.shape() => Err(checkpoint_error(
                    path,
                    format!("optimizer state of {} has shape {:?}", p.name, view.shape()),
                )),
                Ok(view) => from_view::<E>(&view).map(Some).map_err(|e| {
                    checkpoint_error(path, format!("optimizer state of {}: {e}", p.name))
                }),
            }
        };
        optimizer.set_state(id, load(FIRST)?, load(SECOND)?);
    }
    let state = TrainState {
        optimizer,
        epoch: parse(path, "epoch", get("epoch")?)?,
        shuffle_seed: parse(path, "shuffle_seed", get("shuffle_seed")?)?,
    };
    for (id, t) in params {
        net.params
            .get_mut(id)
            .expect("matched ids come from this network")
            .value = t;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_failing_part_way_leaves_the_previous_file_intact() {
        let dir = std::env::temp_dir().join(format!("tapegrad-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.safetensors");
        write_atomic(&path, b"first version").unwrap();
        // The disk fills up after 5 bytes.
        let err = write_atomic_with(&path, b"second version, longer", |f, bytes| {
            f.write_all(&bytes[..5])?;
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device",
            ))
        })
        .unwrap_err();
        assert!(err.to_string().contains("no space left on device"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"first version");
        // No temporary file is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
        // A process killed mid-write: a partial temporary file exists, the checkpoint is intact,
        // and the next save replaces both.
        let tmp = dir.join(format!(".model.safetensors.tmp-{}", std::process::id()));
        std::fs::write(&tmp, b"half").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first version");
        write_atomic(&path, b"third").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
        assert!(!tmp.exists());
        // A folder that does not exist: an error naming the temporary file, nothing written.
        let err = write_atomic(&dir.join("no/such/dir/x"), b"x").unwrap_err();
        assert!(matches!(err, NnError::Io { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
