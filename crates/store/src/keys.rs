//! The recipient key: the per-database secret that keys recipient hashes,
//! and its rotation. After `rotate`, new messages are hashed under the new
//! secret; during the grace period the previous one is kept so that a
//! recipient seen before the rotation is recognised after it (campaign
//! recipient counts do not double). When the grace period is over, the
//! next writer (scan, serve, keys rotate) deletes the old secret, and
//! hashes made under it can no longer be matched to anything new. A writer
//! that started inside the grace period keeps matching until it restarts.

use rusqlite::{params, OptionalExtension};

use crate::StoreError;

/// What `textwatch keys show` prints: fingerprints, never secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The first 16 hex digits of a BLAKE3 hash of the current secret.
    pub fingerprint: String,
    /// The hash function (`blake3-keyed`, `hmac-sha256`).
    pub hash: &'static str,
    /// When the key was last rotated (ms), if ever.
    pub rotated_at: Option<i64>,
    /// The previous key's fingerprint and the end of its grace period (ms),
    /// while it is kept.
    pub previous: Option<(String, i64)>,
}

fn fingerprint(secret: &[u8]) -> String {
    blake3::hash(secret).to_hex()[..16].to_string()
}

impl KeyInfo {
    /// From the current secret, when it was made, and the previous secret
    /// with the end of its grace period (while it is kept).
    pub(crate) fn of(
        secret: &[u8],
        hash: textwatch_engine::RecipientHash,
        rotated_at: Option<i64>,
        previous: Option<Vec<u8>>,
        grace_until: Option<i64>,
    ) -> Self {
        KeyInfo {
            fingerprint: fingerprint(secret),
            hash: hash.name(),
            rotated_at,
            previous: match (previous, grace_until) {
                (Some(p), Some(until)) => Some((fingerprint(&p), until)),
                _ => None,
            },
        }
    }
}

/// A new secret: 32 random bytes.
pub(crate) fn fresh_secret() -> Result<Vec<u8>, StoreError> {
    let mut fresh = vec![0u8; 32];
    getrandom::getrandom(&mut fresh)
        .map_err(|e| StoreError::Schema(format!("no randomness for the new secret: {e}")))?;
    Ok(fresh)
}

/// `(secret_rotated_at, secret_grace_until)` from the embedded store's
/// meta table.
pub(crate) fn rotation(conn: &rusqlite::Connection) -> Result<(Option<i64>, Option<i64>), StoreError> {
    let get = |k: &str| -> Result<Option<i64>, StoreError> {
        Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0)).optional()?)
    };
    Ok((get("secret_rotated_at")?, get("secret_grace_until")?))
}

/// [`WriteStore::rotate_secret`] on the embedded store's connection:
/// `current` becomes the previous secret, and the new one is returned.
///
/// [`WriteStore::rotate_secret`]: crate::WriteStore::rotate_secret
pub(crate) fn rotate(
    conn: &mut rusqlite::Connection,
    current: &[u8],
    now_ms: i64,
    grace_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    let fresh = fresh_secret()?;
    let tx = conn.transaction()?;
    for (k, v) in [
        ("secret_previous", rusqlite::types::Value::Blob(current.to_vec())),
        ("secret_rotated_at", rusqlite::types::Value::Integer(now_ms)),
        ("secret_grace_until", rusqlite::types::Value::Integer(now_ms.saturating_add(grace_ms))),
        ("secret", rusqlite::types::Value::Blob(fresh.clone())),
    ] {
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![k, v])?;
    }
    tx.commit()?;
    Ok(fresh)
}

/// [`WriteStore::forget_expired_secret`] on the embedded store's
/// connection: the old secret is overwritten, not just unlinked from its
/// page.
///
/// [`WriteStore::forget_expired_secret`]: crate::WriteStore::forget_expired_secret
pub(crate) fn forget_expired(conn: &rusqlite::Connection, now_ms: i64) -> Result<bool, StoreError> {
    match rotation(conn)?.1 {
        Some(u) if now_ms >= u => {
            conn.pragma_update(None, "secure_delete", true)?;
            let n = conn.execute("DELETE FROM meta WHERE key = 'secret_previous'", [])?;
            conn.pragma_update(None, "secure_delete", false)?;
            Ok(n > 0)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use crate::sqlite::SqliteStore;

    #[test]
    fn rotation_keeps_the_old_key_for_its_grace_period_only() {
        use crate::WriteStore as _;
        let mut s = SqliteStore::in_memory().unwrap();
        let first = s.key_info(0).unwrap();
        let old = crate::Store::secret(&s).to_vec();
        assert!(first.rotated_at.is_none() && first.previous.is_none());
        let after = s.rotate_secret(1_000, 10_000).unwrap();
        assert_ne!(after.fingerprint, first.fingerprint);
        assert_eq!(after.previous, Some((first.fingerprint.clone(), 11_000)));
        assert_ne!(crate::Store::secret(&s), old.as_slice());
        assert_eq!(s.previous_secret(5_000).unwrap(), Some(old));
        assert_eq!(s.previous_secret(11_000).unwrap(), None, "the grace period is over");
        assert!(!s.forget_expired_secret(5_000).unwrap());
        assert!(s.forget_expired_secret(11_000).unwrap());
        assert_eq!(s.key_info(11_000).unwrap().previous, None);
    }
}
