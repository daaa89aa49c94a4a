//! Checkpoints in the safetensors format (readable by PyTorch, candle and burn): a network's
//! parameters by name, and optionally the training state (optimizer moments, epoch, shuffle
//! seed) so training resumes exactly. Saves are atomic: a temporary file in the same folder is
//! written, flushed to disk and renamed over the old checkpoint, so a failed or interrupted save
//! leaves the previous checkpoint intact.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use tapegrad_tensor::{Float, Tensor};

use crate::error::{NnError, Result};
use crate::model::Model;
use crate::optim::{MAX_STEPS, Optimizer, OptimizerKind, ParamState};
use crate::params::ParamId;
use crate::train::TrainState;

const FIRST: &str = "__optimizer.first.";
const SECOND: &str = "__optimizer.second.";
/// Metadata key prefix of a parameter's optimizer step count.
const STEP: &str = "optimizer.step.";

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
        other => return Err(format!("dtype {other:?}, the model holds {}", E::DTYPE)),
    };
    Tensor::from_vec(values, view.shape()).map_err(|e| e.to_string())
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed and synced, then
/// renamed over `path`. On any failure the temporary file is removed and `path` is untouched.
///
/// Each save writes its own temporary file (named after the process, a per-process counter and a
/// short hash of the file name, so it stays short for any file name), so saves to one path from
/// several threads or processes each land whole or fail cleanly, and a reader of `path` only
/// ever sees a complete old or new file. A save first removes the temporary files that earlier
/// saves to the same path left behind when their process was killed.
///
/// # Errors
///
/// [`NnError::Io`] naming the file that could not be written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, |file, bytes| file.write_all(bytes))
}

/// The temporary files of this process's saves in progress: a save never removes these.
fn active_temps() -> &'static Mutex<HashSet<PathBuf>> {
    static ACTIVE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    ACTIVE.get_or_init(Default::default)
}

/// The start of every temporary file name for saves to the file `name`: a dot, up to 32 bytes
/// of the name, and a 64-bit FNV-1a hash of the whole name (so two long names that share 32
/// bytes do not share temporary files).
fn temp_stem(name: &str) -> String {
    let mut cut = name.len().min(32);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!(".{}.{hash:016x}.", &name[..cut])
}

/// Whether the process `pid` is alive (Linux: it has a `/proc` entry). Where that cannot be
/// told, every other process counts as alive, so its files are left alone.
fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the temporary files of saves to `name` in `dir` whose writer is gone: another
/// process that no longer runs, or this process with no save of that file in progress. Also
/// removes the older `.NAME.tmp-PID` files of dead processes.
fn remove_stale_temps(dir: &Path, name: &str, stem: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let old_stem = format!(".{name}.tmp-");
    let me = std::process::id();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let pid = if let Some(rest) = file.strip_prefix(stem) {
            // STEM PID.SEQ.tmp
            rest.strip_suffix(".tmp")
                .and_then(|r| r.split_once('.'))
                .and_then(|(pid, seq)| seq.parse::<u64>().ok().and(pid.parse::<u32>().ok()))
        } else if let Some(rest) = file.strip_prefix(&old_stem) {
            rest.parse::<u32>().ok()
        } else {
            None
        };
        let Some(pid) = pid else { continue };
        let path = entry.path();
        let stale = if pid == me {
            !active_temps()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&path)
        } else {
            !process_alive(pid)
        };
        if stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// [`write_atomic`] with the write itself supplied, so tests can fail it part-way.
fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    write: impl FnOnce(&mut File, &[u8]) -> std::io::Result<()>,
) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| NnError::Io { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let stem = temp_stem(&name);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{stem}{}.{seq}.tmp", std::process::id()));
    active_temps()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(tmp.clone());
    remove_stale_temps(&dir, &name, &stem);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
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
    active_temps()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&tmp);
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

fn param_tensors<E: Float, M: Model<E> + ?Sized>(net: &M) -> Vec<(String, Vec<u8>, Vec<usize>)> {
    net.params()
        .iter()
        .map(|(_, p)| {
            (
                p.name().to_string(),
                to_bytes(p.value()),
                p.value().shape().to_vec(),
            )
        })
        .collect()
}

/// Saves a network's parameters, by name, to a safetensors file (atomically).
///
/// # Errors
///
/// [`NnError::Io`] when the file cannot be written; the previous file is then left intact.
pub fn save_params<E: Float, M: Model<E> + ?Sized>(path: impl AsRef<Path>, net: &M) -> Result<()> {
    let path = path.as_ref();
    let bytes = serialize::<E>(param_tensors(net), HashMap::new(), path)?;
    write_atomic(path, &bytes)
}

/// Saves the parameters and the training state (optimizer state, epoch, shuffle seed).
///
/// # Errors
///
/// As [`save_params`].
pub fn save_checkpoint<E: Float, M: Model<E> + ?Sized>(
    path: impl AsRef<Path>,
    net: &M,
    state: &TrainState<E>,
) -> Result<()> {
    let path = path.as_ref();
    let mut tensors = param_tensors(net);
    let mut meta = HashMap::new();
    for (id, p) in net.params().iter() {
        let Some(st) = state.optimizer.state(id) else {
            continue;
        };
        meta.insert(format!("{STEP}{}", p.name()), st.step.to_string());
        let (first, second) = (&st.first, &st.second);
        if let Some(t) = first {
            tensors.push((
                format!("{FIRST}{}", p.name()),
                to_bytes(t),
                t.shape().to_vec(),
            ));
        }
        if let Some(t) = second {
            tensors.push((
                format!("{SECOND}{}", p.name()),
                to_bytes(t),
                t.shape().to_vec(),
            ));
        }
    }
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
fn matched_params<E: Float, M: Model<E> + ?Sized>(
    file: &SafeTensors<'_>,
    net: &M,
    path: &Path,
) -> Result<Vec<(ParamId, Tensor<E>)>> {
    let mut problems = Vec::new();
    let mut values = Vec::new();
    for (id, p) in net.params().iter() {
        match file.tensor(p.name()) {
            Err(_) => problems.push(format!("missing parameter {}", p.name())),
            Ok(view) if view.shape() != p.value().shape() => problems.push(format!(
                "parameter {} has shape {:?} in the file, the model needs {:?}",
                p.name(),
                view.shape(),
                p.value().shape()
            )),
            Ok(view) => match from_view::<E>(&view) {
                Ok(t) => values.push((id, t)),
                Err(e) => problems.push(format!("parameter {}: {e}", p.name())),
            },
        }
    }
    // One rule for every name: a parameter of this network, or the optimizer state of one.
    for name in file.names() {
        let param = name
            .strip_prefix(FIRST)
            .or_else(|| name.strip_prefix(SECOND))
            .unwrap_or(name);
        if net.params().find(param).is_none() {
            let what = if param == name {
                "not a parameter of this model"
            } else {
                "optimizer state of no parameter of this model"
            };
            problems.push(format!("unexpected tensor {name} ({what})"));
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
pub fn load_params<E: Float, M: Model<E> + ?Sized>(
    path: impl AsRef<Path>,
    net: &mut M,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let file = parse_file(&bytes, path)?;
    for (id, t) in matched_params(&file, net, path)? {
        net.params_mut()
            .set(id, t)
            .expect("matched ids and shapes come from this model");
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
pub fn load_checkpoint<E: Float, M: Model<E> + ?Sized>(
    path: impl AsRef<Path>,
    net: &mut M,
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
    // A bad setting is the file's, not the caller's: name the file and the key.
    let mut optimizer = Optimizer::new(kind).map_err(|e| match e {
        NnError::Config { setting, reason } => checkpoint_error(
            path,
            format!("metadata key \"optimizer.{setting}\": {reason}"),
        ),
        other => other,
    })?;
    let step_count = |key: &str, v: &str| -> Result<u64> {
        let n: u64 = parse(path, key, v)?;
        if n > MAX_STEPS {
            return Err(checkpoint_error(
                path,
                format!(
                    "metadata key {key:?}: step count {n} is past 2^53 (no run takes that many)"
                ),
            ));
        }
        Ok(n)
    };
    optimizer.steps = step_count("optimizer.steps", get("optimizer.steps")?)?;
    let (wants_first, wants_second) = kind.keeps();
    for (id, p) in net.params().iter() {
        let load = |prefix: &str| -> Result<Option<Tensor<E>>> {
            match file.tensor(&format!("{prefix}{}", p.name())) {
                Err(_) => Ok(None),
                Ok(view) if view.shape() != p.value().shape() => Err(checkpoint_error(
                    path,
                    format!(
                        "tensor {prefix}{} has shape {:?}, the parameter {:?}",
                        p.name(),
                        view.shape(),
                        p.value().shape()
                    ),
                )),
                Ok(view) => from_view::<E>(&view).map(Some).map_err(|e| {
                    checkpoint_error(path, format!("tensor {prefix}{}: {e}", p.name()))
                }),
            }
        };
        let (first, second) = (load(FIRST)?, load(SECOND)?);
        let step_key = format!("{STEP}{}", p.name());
        let step = match meta.get(&step_key) {
            Some(v) => step_count(&step_key, v)?,
            // A file without per-parameter counts: every parameter with state took every step.
            None if first.is_some() || second.is_some() => optimizer.steps,
            None => 0,
        };
        if step == 0 {
            if let Some(prefix) = [(FIRST, &first), (SECOND, &second)]
                .into_iter()
                .find_map(|(prefix, t)| t.is_some().then_some(prefix))
            {
                return Err(checkpoint_error(
                    path,
                    format!(
                        "tensor {prefix}{} is optimizer state of a parameter that took no step",
                        p.name()
                    ),
                ));
            }
            continue;
        }
        for (prefix, wanted, t) in [
            (FIRST, wants_first, &first),
            (SECOND, wants_second, &second),
        ] {
            if wanted && t.is_none() {
                return Err(checkpoint_error(
                    path,
                    format!(
                        "tensor {prefix}{} is missing: {} keeps it for every parameter that took a step",
                        p.name(),
                        kind.name()
                    ),
                ));
            }
            if !wanted && t.is_some() {
                return Err(checkpoint_error(
                    path,
                    format!(
                        "tensor {prefix}{} is not state {} keeps",
                        p.name(),
                        kind.name()
                    ),
                ));
            }
        }
        optimizer
            .set_state(
                net.params(),
                id,
                Some(ParamState {
                    step,
                    first,
                    second,
                }),
            )
            .map_err(|e| checkpoint_error(path, e.to_string()))?;
    }
    let state = TrainState {
        optimizer,
        epoch: parse(path, "epoch", get("epoch")?)?,
        shuffle_seed: parse(path, "shuffle_seed", get("shuffle_seed")?)?,
    };
    for (id, t) in params {
        net.params_mut()
            .set(id, t)
            .expect("matched ids and shapes come from this model");
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
        // Processes killed mid-write leave partial temporary files (new and old naming); the
        // checkpoint is intact and the next save removes them, and only them.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stem = temp_stem("model.safetensors");
        let stale = [
            format!("{stem}{dead}.0.tmp"),
            format!("{stem}{dead}.17.tmp"),
            format!("{stem}{}.99.tmp", std::process::id()),
            format!(".model.safetensors.tmp-{dead}"),
            format!(".model.safetensors.tmp-{}", std::process::id()),
        ];
        for name in &stale {
            std::fs::write(dir.join(name), b"half").unwrap();
        }
        // A live process's save in progress, and another file's temporary, are left alone.
        let live = format!("{stem}1.0.tmp");
        let other = format!("{}{dead}.0.tmp", temp_stem("other.bin"));
        std::fs::write(dir.join(&live), b"busy").unwrap();
        std::fs::write(dir.join(&other), b"keep").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first version");
        write_atomic(&path, b"third").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        left.sort();
        let mut expected = vec![live.clone(), other.clone()];
        expected.sort();
        assert_eq!(left, expected);
        std::fs::remove_file(dir.join(&live)).unwrap();
        std::fs::remove_file(dir.join(&other)).unwrap();
        // A 250-byte file name: the temporary name stays short (it used to pass 255 bytes).
        let long = dir.join("x".repeat(250));
        write_atomic(&long, b"long").unwrap();
        assert_eq!(std::fs::read(&long).unwrap(), b"long");
        assert!(temp_stem(&"x".repeat(250)).len() < 60);
        std::fs::remove_file(&long).unwrap();
        // A folder that does not exist: an error naming the temporary file, nothing written.
        let err = write_atomic(&dir.join("no/such/dir/x"), b"x").unwrap_err();
        assert!(matches!(err, NnError::Io { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
