//! Datasets: generators, embedded files, CSV and IDX readers, splits and standardization.

use std::io::Write;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tapegrad_nn::data::{self, Standardizer};
use tapegrad_nn::{Dataset, NnError};
use tapegrad_tensor::Tensor;

#[test]
fn generators_are_seeded_and_balanced() {
    type Gen = fn(usize, f64, &mut StdRng) -> Dataset<f32>;
    let gens: [(&str, Gen); 4] = [
        ("xor", data::xor),
        ("circles", data::circles),
        ("moons", data::moons),
        ("spirals", data::spirals),
    ];
    for (name, g) in gens {
        let a = g(400, 0.1, &mut StdRng::seed_from_u64(1));
        let b = g(400, 0.1, &mut StdRng::seed_from_u64(1));
        let c = g(400, 0.1, &mut StdRng::seed_from_u64(2));
        assert_eq!(a, b, "{name}");
        assert_ne!(a, c, "{name}");
        assert_eq!(a.x.shape(), &[400, 2], "{name}");
        let ones = a.labels().unwrap().iter().filter(|&&l| l == 1).count();
        assert_eq!(ones, 200, "{name}");
    }
    // Circles: class 0 on radius 1, class 1 on radius 0.5 (noise-free).
    let c = data::circles::<f64, _>(100, 0.0, &mut StdRng::seed_from_u64(0));
    for (i, &l) in c.labels().unwrap().iter().enumerate() {
        let r = (c.x.get(&[i, 0]).unwrap().powi(2) + c.x.get(&[i, 1]).unwrap().powi(2)).sqrt();
        assert!((r - if l == 0 { 1.0 } else { 0.5 }).abs() < 1e-12);
    }
    // XOR: the label is the sign disagreement of the (noise-free) point.
    let x = data::xor::<f64, _>(8, 0.0, &mut StdRng::seed_from_u64(0));
    for (i, &l) in x.labels().unwrap().iter().enumerate() {
        let p = x.x.get(&[i, 0]).unwrap() * x.x.get(&[i, 1]).unwrap();
        assert_eq!(l, usize::from(p < 0.0));
    }
}

#[test]
fn embedded_datasets() {
    let bc = data::breast_cancer::<f32>();
    assert_eq!(bc.x.shape(), &[569, 30]);
    assert_eq!(
        bc.labels().unwrap().iter().filter(|&&l| l == 0).count(),
        212
    );
    let iris = data::iris::<f64>();
    assert_eq!(
        (iris.x.shape(), iris.num_classes()),
        (&[150usize, 4][..], 3)
    );
    let digits = data::digits::<f32>();
    assert_eq!(
        (digits.x.shape(), digits.num_classes()),
        (&[1797usize, 64][..], 10)
    );
    assert_eq!(
        digits
            .x
            .max_axis(0, false)
            .unwrap()
            .as_slice()
            .iter()
            .cloned()
            .fold(0.0, f32::max),
        16.0
    );
}

#[test]
fn csv_errors_name_file_line_and_column() {
    let ok = "a,b,label\n1.0,2.0,0\n3,4,1\n";
    let d = data::from_csv_str::<f32>(ok, "ok.csv", None).unwrap();
    assert_eq!(d.x.to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    let by_name = data::from_csv_str::<f32>("label,a\n1,5\n", "named.csv", Some("label")).unwrap();
    assert_eq!(
        (by_name.x.to_vec(), by_name.labels().unwrap().to_vec()),
        (vec![5.0], vec![1])
    );
    let cases = [
        (
            "a,b,label\n1,2,0\n3,x,1\n",
            "bad.csv:3:2: \"x\" is not a number",
        ),
        (
            "a,b,label\n1,2,0\n3,4\n",
            "bad.csv:3:3: expected 3 fields, found 2",
        ),
        (
            "a,b,label\n1,2,-1\n",
            "bad.csv:2:3: label \"-1\" is not a non-negative integer",
        ),
        (
            "a,b,label\n1,2,0.5\n",
            "bad.csv:2:3: label \"0.5\" is not a non-negative integer",
        ),
        ("a,b,label\n", "bad.csv:2:1: no data rows after the header"),
        ("", "bad.csv:1:1: empty file: expected a header row"),
        ("a,b,label\n1,inf,0\n", "bad.csv:2:2: \"inf\" is not finite"),
    ];
    for (text, msg) in cases {
        let err = data::from_csv_str::<f32>(text, "bad.csv", None).unwrap_err();
        assert!(matches!(err, NnError::Csv { .. }));
        assert_eq!(err.to_string(), msg);
    }
    assert_eq!(
        data::from_csv_str::<f32>("a,b\n1,2\n", "bad.csv", Some("y"))
            .unwrap_err()
            .to_string(),
        "bad.csv:1:1: no column named \"y\" in the header"
    );
    let dir = std::env::temp_dir().join(format!("tapegrad-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.csv");
    std::fs::write(&path, "f,label\n1,0\n2,oops\n").unwrap();
    let msg = data::load_csv::<f32>(&path, None).unwrap_err().to_string();
    assert!(
        msg.ends_with("broken.csv:3:2: label \"oops\" is not a non-negative integer"),
        "{msg}"
    );
    let missing = data::load_csv::<f32>(dir.join("none.csv"), None).unwrap_err();
    assert!(matches!(missing, NnError::Io { .. }));
    let msg = missing.to_string();
    assert!(
        msg.contains("none.csv: ") && msg.contains("No such file"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn idx_reader_plain_and_gzipped() {
    let images = idx_bytes(&[2, 2, 3], &[0, 255, 10, 20, 30, 40, 1, 2, 3, 4, 5, 6]);
    let labels = idx_bytes(&[2], &[7, 3]);
    let a = data::parse_idx(&images, "img").unwrap();
    assert_eq!(a.dims, vec![2, 2, 3]);
    assert_eq!(data::parse_idx(&gzip(&images), "img.gz").unwrap(), a);
    let l = data::parse_idx(&gzip(&labels), "lab.gz").unwrap();
    let d = data::idx_dataset::<f32>(&a, &l).unwrap();
    assert_eq!(d.x.shape(), &[2, 6]);
    assert_eq!(d.x.get(&[0, 1]).unwrap(), 1.0);
    assert_eq!(d.labels().unwrap(), &[7, 3]);
}

#[test]
fn malformed_idx_files_name_the_file() {
    let good = idx_bytes(&[3, 2], &[1, 2, 3, 4, 5, 6]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            good[..good.len() - 1].to_vec(),
            "t.idx: dimensions [3, 2] need 6 data bytes, the file has 5",
        ),
        (
            good[..6].to_vec(),
            "t.idx: truncated header: 2 dimensions need 12 bytes, the file has 6",
        ),
        (vec![1, 2], "t.idx: truncated header: 2 bytes"),
        (
            vec![9, 9, 8, 1, 0, 0, 0, 0],
            "t.idx: bad magic number 09 09 08 01: not an IDX file",
        ),
        (
            vec![0, 0, 0x0d, 1, 0, 0, 0, 0],
            "t.idx: element type 0x0d is not supported (only 0x08, unsigned byte)",
        ),
        (
            idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[]),
            "t.idx: dimensions [4294967295, 4294967295, 4294967295] overflow",
        ),
        (
            idx_bytes(&[1_000_000, 1_000], &[0; 10]),
            "t.idx: dimensions [1000000, 1000] need 1000000000 data bytes, the file has 10",
        ),
    ];
    for (bytes, msg) in cases {
        assert_eq!(
            data::parse_idx(&bytes, "t.idx").unwrap_err().to_string(),
            msg
        );
    }
    let gz = gzip(&good);
    let err = data::parse_idx(&gz[..gz.len() / 2], "t.idx.gz")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("t.idx.gz: corrupt gzip stream"), "{err}");
}

#[test]
fn a_gzip_bomb_is_inflated_only_as_far_as_its_header_declares() {
    // A header that declares 16 bytes, followed by 8 MiB more: the stream is inflated only to
    // the 17th data byte. Its CRC trailer is broken, so reading the whole stream would end in a
    // "corrupt gzip stream" error instead of the one asserted here.
    let mut bytes = idx_bytes(&[16], &[7; 16]);
    bytes.extend(std::iter::repeat_n(0u8, 8 << 20));
    let mut gz = gzip(&bytes);
    assert!(gz.len() < 64 << 10, "a small file: {} bytes", gz.len());
    let n = gz.len();
    gz[n - 8] ^= 0xff;
    let err = data::parse_idx(&gz, "bomb.idx.gz").unwrap_err().to_string();
    assert_eq!(
        err,
        "bomb.idx.gz: the file holds more than its header declares: dimensions [16] need 16 \
         data bytes, the file has more"
    );
    // The same check for a plain file, which can say how much it holds.
    let plain = idx_bytes(&[2], &[1, 2, 3]);
    assert_eq!(
        data::parse_idx(&plain, "t.idx").unwrap_err().to_string(),
        "t.idx: the file holds more than its header declares: dimensions [2] need 2 data \
         bytes, the file has 3"
    );
    // An exact stream still loads.
    let exact = gzip(&idx_bytes(&[16], &[7; 16]));
    assert_eq!(data::parse_idx(&exact, "ok.gz").unwrap().data, vec![7; 16]);
}

#[test]
fn stratified_split_and_standardizer() {
    let mut rng = StdRng::seed_from_u64(0);
    let bc = data::breast_cancer::<f64>();
    let (train, test) = data::train_test_split(&bc, 0.2, &mut rng).unwrap();
    assert_eq!((train.len(), test.len()), (455, 114));
    let malignant = |d: &Dataset<f64>| d.labels().unwrap().iter().filter(|&&l| l == 0).count();
    assert_eq!((malignant(&train), malignant(&test)), (170, 42));
    let s = Standardizer::fit(&train.x).unwrap();
    let z = s.transform(&train.x).unwrap();
    for v in z.mean_axis(0, false).unwrap().to_vec() {
        assert!(v.abs() < 1e-9);
    }
    for v in z.square().mean_axis(0, false).unwrap().to_vec() {
        assert!((v - 1.0).abs() < 1e-9);
    }
    assert!(s.transform(&Tensor::zeros(&[2, 3])).is_err());
    assert!(data::train_test_split(&bc, 1.0, &mut rng).is_err());
    let constant = Tensor::<f64>::ones(&[4, 1]);
    assert_eq!(
        Standardizer::fit(&constant)
            .unwrap()
            .transform(&constant)
            .unwrap()
            .to_vec(),
        vec![0.0; 4]
    );
}
