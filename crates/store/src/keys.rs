//! The recipient key: the per-database secret that keys recipient hashes,
//! and its rotation. After `rotate`, new messages are hashed under the new
//! secret; during the grace period the previous one is kept so that a
//! recipient seen before the rotation is recognised after it (campaign
//! recipient counts do not double). When the grace period is over, the
//! next writer (scan, serve, keys rotate) deletes the old secret, and
//! hashes made under it can no longer be matched to anything new. A writer
//! that started inside the grace period keeps matching until it restarts.

use crate::WriteStore as _;
use rusqlite::{params, OptionalExtension};

use crate::sqlite::SqliteStore;
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

impl SqliteStore {
    /// The current key's fingerprint and the rotation state.
    pub fn key_info(&self, now_ms: i64) -> Result<KeyInfo, StoreError> {
        let get_i64 = |k: &str| -> Result<Option<i64>, StoreError> {
            Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0)).optional()?)
        };
        let previous = match (self.previous_secret(now_ms)?, get_i64("secret_grace_until")?) {
            (Some(p), Some(until)) => Some((fingerprint(&p), until)),
            _ => None,
        };
        Ok(KeyInfo {
            fingerprint: fingerprint(&self.secret),
            hash: crate::Store::recipient_hash(self).name(),
            rotated_at: get_i64("secret_rotated_at")?,
            previous,
        })
    }

    /// Makes a new secret the current one and keeps the old one until
    /// `now_ms + grace_ms`; a previous key from an earlier rotation is
    /// dropped. Take the writer lock first (a running scan or server keeps
    /// the key it started with).
    pub fn rotate_secret(&mut self, now_ms: i64, grace_ms: i64) -> Result<KeyInfo, StoreError> {
        let mut fresh = vec![0u8; 32];
        getrandom::getrandom(&mut fresh)
            .map_err(|e| StoreError::Schema(format!("no randomness for the new secret: {e}")))?;
        let tx = self.conn.transaction()?;
        for (k, v) in [
            ("secret_previous", rusqlite::types::Value::Blob(self.secret.clone())),
            ("secret_rotated_at", rusqlite::types::Value::Integer(now_ms)),
            ("secret_grace_until", rusqlite::types::Value::Integer(now_ms.saturating_add(grace_ms))),
            ("secret", rusqlite::types::Value::Blob(fresh.clone())),
        ] {
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![k, v])?;
        }
        tx.commit()?;
        self.secret = fresh;
        self.key_info(now_ms)
    }

    /// Deletes a previous secret whose grace period is over (it can no
    /// longer be used to match anything). Returns whether one was deleted.
    pub fn forget_expired_secret(&mut self, now_ms: i64) -> Result<bool, StoreError> {
        let until: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'secret_grace_until'", [], |r| r.get(0))
            .optional()?;
        match until {
            Some(u) if now_ms >= u => {
                // Overwritten, not just unlinked from the page.
                self.conn.pragma_update(None, "secure_delete", true)?;
                let n = self.conn.execute("DELETE FROM meta WHERE key = 'secret_previous'", [])?;
                self.conn.pragma_update(None, "secure_delete", false)?;
                Ok(n > 0)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_old_key_for_its_grace_period_only() {
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
