//! Datasets: seeded 2-D generators, the embedded real datasets, a CSV loader, an IDX reader
//! (MNIST and Fashion-MNIST), stratified splits and standardization.

use std::io::Read;
use std::path::Path;

use rand::Rng;
use rand::seq::SliceRandom;
use tapegrad_tensor::{Float, Tensor};

use crate::error::{NnError, Result, data};

/// What a dataset's rows are labelled with.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets<E: Float = f32> {
    /// One class index per row, each below `num_classes`.
    Classes {
        /// The class of each row.
        labels: Vec<usize>,
        /// The number of classes.
        num_classes: usize,
    },
    /// Regression targets, `[n, outputs]`.
    Values(Tensor<E>),
}

/// Features `[n, d]` and their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset<E: Float = f32> {
    /// The features, one row per sample.
    pub x: Tensor<E>,
    /// The targets.
    pub y: Targets<E>,
}

impl<E: Float> Dataset<E> {
    /// A classification dataset; `num_classes` is one more than the largest label (at least 2).
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] when `x` is not rank 2, the label count differs from its rows, or a
    /// label is `usize::MAX` (one more class than that cannot be counted).
    pub fn classification(x: Tensor<E>, labels: Vec<usize>) -> Result<Self> {
        if x.rank() != 2 || x.shape()[0] != labels.len() {
            return Err(data(
                "classification dataset",
                format!("features {:?} for {} labels", x.shape(), labels.len()),
            ));
        }
        let largest = labels.iter().copied().max().unwrap_or(0);
        let num_classes = largest.checked_add(1).ok_or_else(|| {
            data(
                "classification dataset",
                format!("label {largest} is too large: the class count would overflow"),
            )
        })?;
        let num_classes = num_classes.max(2);
        Ok(Dataset {
            x,
            y: Targets::Classes {
                labels,
                num_classes,
            },
        })
    }

    /// A regression dataset with targets `[n, outputs]`.
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] when either is not rank 2 or their row counts differ.
    pub fn regression(x: Tensor<E>, y: Tensor<E>) -> Result<Self> {
        if x.rank() != 2 || y.rank() != 2 || x.shape()[0] != y.shape()[0] {
            return Err(data(
                "regression dataset",
                format!("features {:?} and targets {:?}", x.shape(), y.shape()),
            ));
        }
        Ok(Dataset {
            x,
            y: Targets::Values(y),
        })
    }

    /// Checks that the parts agree, as every function that consumes a dataset does first (the
    /// fields are public, so a dataset can be built or changed by hand): features `[n, d]`, and
    /// `n` labels each below `num_classes`, or regression targets `[n, k]`.
    ///
    /// ```
    /// use tapegrad_nn::data::{Dataset, Targets};
    /// use tapegrad_tensor::Tensor;
    /// let mut d = Dataset::classification(Tensor::<f32>::zeros(&[3, 2]), vec![0, 1, 1])?;
    /// assert!(d.validate().is_ok());
    /// d.y = Targets::Classes { labels: vec![0, 1], num_classes: 2 };
    /// assert_eq!(
    ///     d.validate().unwrap_err().to_string(),
    ///     "invalid data for dataset: 3 rows of features but 2 labels"
    /// );
    /// # Ok::<(), tapegrad_nn::NnError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] naming what disagrees.
    pub fn validate(&self) -> Result<()> {
        let op = "dataset";
        if self.x.rank() != 2 {
            return Err(data(
                op,
                format!(
                    "features must have shape [rows, features], got {:?}",
                    self.x.shape()
                ),
            ));
        }
        let n = self.x.shape()[0];
        match &self.y {
            Targets::Classes {
                labels,
                num_classes,
            } => {
                if labels.len() != n {
                    return Err(data(
                        op,
                        format!("{n} rows of features but {} labels", labels.len()),
                    ));
                }
                if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= *num_classes)
                {
                    return Err(data(
                        op,
                        format!("label {l} of row {i} is not below num_classes {num_classes}"),
                    ));
                }
            }
            Targets::Values(y) => {
                if y.rank() != 2 || y.shape()[0] != n {
                    return Err(data(
                        op,
                        format!(
                            "{n} rows of features but targets of shape {:?} (expected [{n}, k])",
                            y.shape()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.x.shape().first().copied().unwrap_or(0)
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of features.
    pub fn num_features(&self) -> usize {
        self.x.shape().get(1).copied().unwrap_or(0)
    }

    /// The class labels, for a classification dataset.
    pub fn labels(&self) -> Option<&[usize]> {
        match &self.y {
            Targets::Classes { labels, .. } => Some(labels),
            Targets::Values(_) => None,
        }
    }

    /// The number of classes (0 for regression).
    pub fn num_classes(&self) -> usize {
        match &self.y {
            Targets::Classes { num_classes, .. } => *num_classes,
            Targets::Values(_) => 0,
        }
    }

    /// The rows at `indices`, in that order.
    ///
    /// # Errors
    ///
    /// When the dataset is inconsistent ([`Dataset::validate`]) or an index is past the last
    /// row.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        self.validate()?;
        let x = self.x.select_rows(indices)?;
        let y = match &self.y {
            Targets::Classes {
                labels,
                num_classes,
            } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                num_classes: *num_classes,
            },
            Targets::Values(t) => Targets::Values(t.select_rows(indices)?),
        };
        Ok(Dataset { x, y })
    }

    /// Converts the features (and regression targets) to another float type.
    pub fn cast<F: Float>(&self) -> Dataset<F> {
        Dataset {
            x: self.x.cast(),
            y: match &self.y {
                Targets::Classes {
                    labels,
                    num_classes,
                } => Targets::Classes {
                    labels: labels.clone(),
                    num_classes: *num_classes,
                },
                Targets::Values(t) => Targets::Values(t.cast()),
            },
        }
    }
}

fn two_class<E: Float>(points: Vec<(f64, f64, usize)>) -> Dataset<E> {
    let n = points.len();
    let mut x = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for (a, b, l) in points {
        x.push(E::from_f64(a));
        x.push(E::from_f64(b));
        labels.push(l);
    }
    Dataset {
        x: Tensor::from_vec(x, &[n, 2]).expect("two values per point"),
        y: Targets::Classes {
            labels,
            num_classes: 2,
        },
    }
}

/// `2 n` normal draws: the noise of `n` points.
///
/// # Panics
///
/// When `2 n` values cannot be held (a panic naming the size, as every generator here).
#[track_caller]
fn gaussian<R: Rng + ?Sized>(n: usize, std: f64, rng: &mut R) -> Vec<f64> {
    Tensor::<f64>::randn(&[n, 2], 0.0, std, rng).to_vec()
}

/// XOR: four Gaussian blobs of `n / 4` points (standard deviation `noise`) at (+-1, +-1);
/// class 1 where the centre's coordinates have opposite signs. No line separates the classes.
pub fn xor<E: Float, R: Rng + ?Sized>(n: usize, noise: f64, rng: &mut R) -> Dataset<E> {
    let e = gaussian(n, noise, rng);
    let points = (0..n)
        .map(|i| {
            let (sx, sy) = [(1.0, 1.0), (-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0)][i % 4];
            (sx + e[2 * i], sy + e[2 * i + 1], usize::from(sx * sy < 0.0))
        })
        .collect();
    two_class(points)
}

/// Two concentric circles (as scikit-learn's `make_circles` with factor 0.5): class 0 on the
/// radius-1 circle, class 1 on the radius-0.5 circle, plus Gaussian noise of std `noise`.
pub fn circles<E: Float, R: Rng + ?Sized>(n: usize, noise: f64, rng: &mut R) -> Dataset<E> {
    let e = gaussian(n, noise, rng);
    let n_outer = n - n / 2;
    let points = (0..n)
        .map(|i| {
            let (k, count, r, label) = if i < n_outer {
                (i, n_outer, 1.0, 0)
            } else {
                (i - n_outer, n / 2, 0.5, 1)
            };
            let t = 2.0 * std::f64::consts::PI * k as f64 / count as f64;
            (r * t.cos() + e[2 * i], r * t.sin() + e[2 * i + 1], label)
        })
        .collect();
    two_class(points)
}

/// Two interleaving half moons (as scikit-learn's `make_moons`) plus Gaussian noise of std
/// `noise`.
pub fn moons<E: Float, R: Rng + ?Sized>(n: usize, noise: f64, rng: &mut R) -> Dataset<E> {
    let e = gaussian(n, noise, rng);
    let n_upper = n - n / 2;
    let pi = std::f64::consts::PI;
    let points = (0..n)
        .map(|i| {
            let (a, b, label) = if i < n_upper {
                let t = pi * i as f64 / (n_upper.max(2) - 1) as f64;
                (t.cos(), t.sin(), 0)
            } else {
                let t = pi * (i - n_upper) as f64 / ((n / 2).max(2) - 1) as f64;
                (1.0 - t.cos(), 0.5 - t.sin(), 1)
            };
            (a + e[2 * i], b + e[2 * i + 1], label)
        })
        .collect();
    two_class(points)
}

/// Two interleaved spirals of 1.5 turns: point i of each arm has radius r = i / (n/2) and angle
/// 3 pi r + k pi plus Gaussian noise of std `noise` on the angle (the reference generator in
/// `data/README.md`).
pub fn spirals<E: Float, R: Rng + ?Sized>(n: usize, noise: f64, rng: &mut R) -> Dataset<E> {
    let e = gaussian(n, noise, rng);
    let per_arm = (n / 2).max(1);
    let pi = std::f64::consts::PI;
    let points = (0..n)
        .map(|i| {
            let (k, j) = (i / per_arm.max(1) % 2, i % per_arm);
            let r = j as f64 / per_arm as f64;
            let t = 3.0 * pi * r + k as f64 * pi + e[i];
            (r * t.sin(), r * t.cos(), k)
        })
        .collect();
    two_class(points)
}

/// Parses CSV text: a header row, then one sample per line, every field a number. The label
/// column (by header name; the last column when `None`) holds non-negative integer classes.
/// `file` names the source in errors.
///
/// # Errors
///
/// [`NnError::Csv`] naming the file, the 1-based line and column, and what is wrong: a missing
/// header, a label column that does not exist, a row with the wrong number of fields, a field
/// that is not a number, a label that is not a non-negative integer, no data rows.
pub fn from_csv_str<E: Float>(
    text: &str,
    file: &str,
    label_column: Option<&str>,
) -> Result<Dataset<E>> {
    let err = |line: usize, column: usize, reason: String| NnError::Csv {
        file: file.to_string(),
        line,
        column,
        reason,
    };
    let mut lines = text.lines().enumerate();
    let (_, header) = lines
        .next()
        .ok_or_else(|| err(1, 1, "empty file: expected a header row".into()))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let label_at = match label_column {
        None => names.len() - 1,
        Some(name) => names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| err(1, 1, format!("no column named {name:?} in the header")))?,
    };
    if names.len() < 2 {
        return Err(err(
            1,
            1,
            "need at least one feature column and a label column".into(),
        ));
    }
    let d = names.len() - 1;
    let mut x: Vec<E> = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != names.len() {
            return Err(err(
                line_no,
                fields.len().min(names.len()) + 1,
                format!("expected {} fields, found {}", names.len(), fields.len()),
            ));
        }
        for (c, field) in fields.iter().enumerate() {
            let field = field.trim();
            if c == label_at {
                let label: usize = field.parse().map_err(|_| {
                    err(
                        line_no,
                        c + 1,
                        format!("label {field:?} is not a non-negative integer"),
                    )
                })?;
                labels.push(label);
            } else {
                let v: f64 = field
                    .parse()
                    .map_err(|_| err(line_no, c + 1, format!("{field:?} is not a number")))?;
                if !v.is_finite() {
                    return Err(err(line_no, c + 1, format!("{field:?} is not finite")));
                }
                let e = E::from_f64(v);
                if !e.is_finite() {
                    return Err(err(
                        line_no,
                        c + 1,
                        format!(
                            "{field:?} overflows {} (it would load as infinity)",
                            E::DTYPE
                        ),
                    ));
                }
                x.push(e);
            }
        }
    }
    if labels.is_empty() {
        return Err(err(2, 1, "no data rows after the header".into()));
    }
    let n = labels.len();
    Dataset::classification(Tensor::from_vec(x, &[n, d])?, labels)
}

/// Reads a CSV file (see [`from_csv_str`]).
///
/// # Errors
///
/// [`NnError::Io`] when the file cannot be read, and the errors of [`from_csv_str`].
pub fn load_csv<E: Float>(
    path: impl AsRef<Path>,
    label_column: Option<&str>,
) -> Result<Dataset<E>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_csv_str(&text, &path.display().to_string(), label_column)
}

/// Breast Cancer Wisconsin (Diagnostic): 569 samples, 30 features, classes 0 = malignant,
/// 1 = benign. Embedded (UCI, CC BY 4.0; see `data/README.md`).
pub fn breast_cancer<E: Float>() -> Dataset<E> {
    from_csv_str(
        include_str!("../data/breast_cancer.csv"),
        "breast_cancer.csv",
        None,
    )
    .expect("the embedded file parses")
}

/// Iris: 150 samples, 4 features, 3 classes. Embedded (UCI, CC BY 4.0).
pub fn iris<E: Float>() -> Dataset<E> {
    from_csv_str(include_str!("../data/iris.csv"), "iris.csv", None)
        .expect("the embedded file parses")
}

/// Optical handwritten digits 8x8: 1797 samples, 64 features (0..16), 10 classes. Embedded
/// (UCI, CC BY 4.0).
pub fn digits<E: Float>() -> Dataset<E> {
    from_csv_str(include_str!("../data/digits.csv"), "digits.csv", None)
        .expect("the embedded file parses")
}

/// An array read from an IDX file: its dimensions and its unsigned bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The size of each dimension.
    pub dims: Vec<usize>,
    /// The elements.
    pub data: Vec<u8>,
}

/// Parses IDX bytes (gzipped or not): a magic number `0 0 0x08 ndim`, `ndim` big-endian u32
/// sizes, then the unsigned bytes. `file` names the source in errors.
///
/// Never allocates more than the input actually holds, whatever the header claims; a gzipped
/// input is inflated at most one byte past the data its header declares (so a gzip bomb that
/// claims 16 bytes inflates 17).
///
/// # Errors
///
/// [`NnError::Idx`] naming the file and what is wrong: a bad magic number, an element type other
/// than unsigned byte, a truncated header or body, more data than the header declares, a
/// corrupt gzip stream.
pub fn parse_idx(bytes: &[u8], file: &str) -> Result<IdxArray> {
    let err = |reason: String| NnError::Idx {
        file: file.to_string(),
        reason,
    };
    let raw;
    let gzipped = bytes.starts_with(&[0x1f, 0x8b]);
    let bytes = if gzipped {
        raw = inflate_idx(bytes).map_err(|e| err(format!("corrupt gzip stream: {e}")))?;
        &raw[..]
    } else {
        bytes
    };
    if bytes.len() < 4 {
        return Err(err(format!("truncated header: {} bytes", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(err(format!(
            "bad magic number {:02x} {:02x} {:02x} {:02x}: not an IDX file",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(err(format!(
            "element type 0x{:02x} is not supported (only 0x08, unsigned byte)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    let body = 4 + 4 * ndim;
    if bytes.len() < body {
        return Err(err(format!(
            "truncated header: {ndim} dimensions need {body} bytes, the file has {}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err(format!("dimensions {dims:?} overflow")))?;
    let have = bytes.len() - body;
    if have > count {
        // A gzip stream is inflated only one byte past what the header declares.
        let holds = if gzipped {
            "more".to_string()
        } else {
            have.to_string()
        };
        return Err(err(format!(
            "the file holds more than its header declares: dimensions {dims:?} need {count} \
             data bytes, the file has {holds}"
        )));
    }
    if have < count {
        return Err(err(format!(
            "dimensions {dims:?} need {count} data bytes, the file has {have}"
        )));
    }
    Ok(IdxArray {
        dims,
        data: bytes[body..].to_vec(),
    })
}

/// Inflates a gzipped IDX file no further than its header declares: the magic number, then the
/// dimensions, then the data bytes they declare and one more (to tell a longer stream from an
/// exact one). A small stream that inflates to gigabytes (a gzip bomb) is read only that far.
/// The buffer grows by fallible reservations, so a header that declares more than memory holds
/// is an error, not an abort.
fn inflate_idx(gz: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut dec = flate2::read::MultiGzDecoder::new(gz);
    let mut out = Vec::new();
    read_up_to(&mut dec, 4, &mut out)?;
    if out.len() < 4 {
        return Ok(out);
    }
    let body = 4 + 4 * out[3] as usize;
    read_up_to(&mut dec, body, &mut out)?;
    if out.len() < body {
        return Ok(out);
    }
    let count = out[4..body].chunks_exact(4).try_fold(1usize, |a, d| {
        a.checked_mul(u32::from_be_bytes(d.try_into().expect("4 bytes")) as usize)
    });
    let limit = count
        .and_then(|c| c.checked_add(body + 1))
        .unwrap_or(usize::MAX);
    read_up_to(&mut dec, limit, &mut out)?;
    Ok(out)
}

/// Reads from `r` until `out` holds `limit` bytes or the stream ends, growing `out` through
/// fallible reservations.
fn read_up_to(r: &mut impl Read, limit: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    while out.len() < limit {
        let want = (limit - out.len()).min(buf.len());
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        out.try_reserve(n).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("cannot allocate {} bytes for the data", out.len() + n),
            )
        })?;
        out.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// Reads an IDX file, gzipped or not (see [`parse_idx`]).
///
/// # Errors
///
/// [`NnError::Io`] when it cannot be read, and the errors of [`parse_idx`].
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_idx(&bytes, &path.display().to_string())
}

/// A classification dataset from IDX images `[n, ...]` (scaled to [0, 1] and flattened) and IDX
/// labels `[n]`.
///
/// # Errors
///
/// [`NnError::Data`] when the counts differ or the labels are not one-dimensional.
pub fn idx_dataset<E: Float>(images: &IdxArray, labels: &IdxArray) -> Result<Dataset<E>> {
    if labels.dims.len() != 1 || images.dims.first() != labels.dims.first() {
        return Err(data(
            "idx dataset",
            format!(
                "images {:?} and labels {:?} do not pair up",
                images.dims, labels.dims
            ),
        ));
    }
    let n = labels.dims[0];
    let d = images.data.len().checked_div(n).unwrap_or(0);
    let scale = E::from_f64(1.0 / 255.0);
    let x = images
        .data
        .iter()
        .map(|&b| E::from_usize(b as usize) * scale)
        .collect();
    let labels = labels.data.iter().map(|&b| b as usize).collect();
    Dataset::classification(Tensor::from_vec(x, &[n, d])?, labels)
}

/// Splits into (train, test) with `test_fraction` of the rows in the test part, shuffled with
/// `rng`. Classification data is stratified: each class is split in the same proportion.
///
/// # Errors
///
/// [`NnError::Config`] when the fraction is not in (0, 1); [`NnError::Data`] for an empty
/// dataset.
pub fn train_test_split<E: Float, R: Rng + ?Sized>(
    data: &Dataset<E>,
    test_fraction: f64,
    rng: &mut R,
) -> Result<(Dataset<E>, Dataset<E>)> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(crate::error::config(
            "test_fraction",
            format!("must lie in (0, 1), got {test_fraction}"),
        ));
    }
    data.validate()?;
    if data.is_empty() {
        return Err(crate::error::data(
            "train_test_split",
            "the dataset is empty",
        ));
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let groups: Vec<Vec<usize>> = match &data.y {
        Targets::Classes { labels, .. } => {
            // The rows of each class present, in class order: memory follows the rows, not the
            // largest label (a label of 10^12 makes no 10^12 groups).
            let mut g: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
            for (i, &l) in labels.iter().enumerate() {
                g.entry(l).or_default().push(i);
            }
            g.into_values().collect()
        }
        Targets::Values(_) => vec![(0..data.len()).collect()],
    };
    // As scikit-learn: ceil(n * fraction) test rows, shared among the classes in proportion,
    // the rows left over by rounding down going to the largest remainders.
    let n = data.len();
    let n_test = ((n as f64 * test_fraction).ceil() as usize).min(n - 1);
    let shares: Vec<f64> = groups
        .iter()
        .map(|g| g.len() as f64 * n_test as f64 / n as f64)
        .collect();
    let mut take: Vec<usize> = shares.iter().map(|s| s.floor() as usize).collect();
    let mut by_remainder: Vec<usize> = (0..groups.len()).collect();
    by_remainder.sort_by(|&a, &b| {
        let (ra, rb) = (shares[a] - shares[a].floor(), shares[b] - shares[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut left = n_test - take.iter().sum::<usize>();
    for &c in by_remainder.iter().cycle().take(groups.len() * 2) {
        if left == 0 {
            break;
        }
        if take[c] < groups[c].len() {
            take[c] += 1;
            left -= 1;
        }
    }
    for (mut g, k) in groups.into_iter().zip(take) {
        g.shuffle(rng);
        test.extend_from_slice(&g[..k]);
        train.extend_from_slice(&g[k..]);
    }
    train.shuffle(rng);
    test.shuffle(rng);
    Ok((data.subset(&train)?, data.subset(&test)?))
}

/// Per-feature standardization (x - mean) / std, fitted on training data only and then applied
/// to any split. Features with zero spread are only centred.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer<E: Float = f32> {
    /// The per-feature means `[d]`.
    pub mean: Tensor<E>,
    /// The per-feature standard deviations `[d]` (1 where the spread is zero).
    pub std: Tensor<E>,
}

impl<E: Float> Standardizer<E> {
    /// Fits the means and standard deviations of `x` (`[n, d]`).
    ///
    /// # Errors
    ///
    /// [`NnError::Data`] when `x` is not rank 2 or has no rows.
    pub fn fit(x: &Tensor<E>) -> Result<Self> {
        if x.rank() != 2 || x.shape()[0] == 0 {
            return Err(data(
                "standardize",
                format!("need [n > 0, d] features, got {:?}", x.shape()),
            ));
        }
        let mean = x.mean_axis(0, false)?;
        let var = x.sub(&mean)?.square().mean_axis(0, false)?;
        let std = var.map(|v| if v > E::ZERO { v.sqrt() } else { E::ONE });
        Ok(Standardizer { mean, std })
    }

    /// Applies the fitted transform.
    ///
    /// # Errors
    ///
    /// When `x` does not have the fitted number of features.
    pub fn transform(&self, x: &Tensor<E>) -> Result<Tensor<E>> {
        Ok(x.sub(&self.mean)?.div(&self.std)?)
    }

    /// Applies the fitted transform to a dataset's features.
    ///
    /// # Errors
    ///
    /// As [`Standardizer::transform`].
    pub fn transform_dataset(&self, data: &Dataset<E>) -> Result<Dataset<E>> {
        data.validate()?;
        Ok(Dataset {
            x: self.transform(&data.x)?,
            y: data.y.clone(),
        })
    }
}

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Loads Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017; MIT licence) from the four gzipped IDX
/// files in `dir`: `(train, test)` with 60,000 and 10,000 images of 784 pixels scaled to [0, 1]
/// and labels 0..9.
///
/// # Errors
///
/// [`NnError::Data`] naming the folder and saying how to install the files when one is missing;
/// the errors of [`read_idx`] for damaged files.
pub fn fashion_mnist<E: Float>(dir: impl AsRef<Path>) -> Result<(Dataset<E>, Dataset<E>)> {
    let dir = dir.as_ref();
    let file = |name: &str| -> Result<IdxArray> {
        let path = dir.join(name);
        if !path.exists() {
            return Err(data(
                "fashion_mnist",
                format!(
                    "{} not found: install the files with `apt-get install dataset-fashion-mnist` \
                     (they go to {FASHION_MNIST_DIR}) or point to a folder holding \
                     train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
                     t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz",
                    path.display()
                ),
            ));
        }
        read_idx(path)
    };
    let train = idx_dataset(
        &file("train-images-idx3-ubyte.gz")?,
        &file("train-labels-idx1-ubyte.gz")?,
    )?;
    let test = idx_dataset(
        &file("t10k-images-idx3-ubyte.gz")?,
        &file("t10k-labels-idx1-ubyte.gz")?,
    )?;
    Ok((train, test))
}
