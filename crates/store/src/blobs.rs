//! How a store writes a campaign's signatures, meaning vectors and
//! infrastructure into one column each: little-endian numbers back to back
//! (`BLOB`/`BYTEA`), and JSON.

use textwatch_engine::minhash::{Signature, SIG_LEN};

pub(crate) fn reps_blob(reps: &[Signature]) -> Vec<u8> {
    let mut b = Vec::with_capacity(reps.len() * SIG_LEN * 4);
    for r in reps {
        for v in r {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    b
}

pub(crate) fn reps_from_blob(b: &[u8]) -> Vec<Signature> {
    b.chunks_exact(SIG_LEN * 4)
        .map(|c| {
            let mut s = [0u32; SIG_LEN];
            for (i, v) in c.chunks_exact(4).enumerate() {
                s[i] = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            }
            s
        })
        .collect()
}

pub(crate) fn vectors_blob(v: &[textwatch_engine::meaning::Vector]) -> Vec<u8> {
    v.iter().flat_map(|x| x.iter().flat_map(|f| f.to_le_bytes())).collect()
}

pub(crate) fn vectors_from_blob(b: &[u8]) -> Vec<textwatch_engine::meaning::Vector> {
    use textwatch_engine::meaning::DIM;
    b.chunks_exact(DIM * 4)
        .map(|c| {
            let mut v = [0f32; DIM];
            for (i, x) in c.chunks_exact(4).enumerate() {
                v[i] = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
            }
            v
        })
        .collect()
}

/// A campaign's link domains and callback numbers, as stored (JSON).
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(crate) struct Infra {
    #[serde(default)]
    pub(crate) domains: Vec<String>,
    #[serde(default)]
    pub(crate) phones: Vec<String>,
}
