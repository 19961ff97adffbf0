//! Basic authentication against the bcrypt hashes of the web config. bcrypt is slow on
//! purpose, so a password once verified is remembered (by a SHA-256 of the user, the
//! password and the hash, never the password itself) and later requests cost a hash, not
//! a bcrypt round. An unknown user's password is checked against a configured user's hash,
//! the result thrown away, so that a refusal takes as long whether the user exists or not
//! (a dummy hash of its own would have a cost of its own).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::HeaderValue;
use base64::Engine;

/// Verified passwords remembered at most; past that the memory is cleared.
const CACHE_ENTRIES: usize = 1024;

/// Checks credentials, remembering those verified.
#[derive(Debug, Default)]
pub struct Authenticator {
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// User and password of an `Authorization: Basic` header.
fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let encoded = header.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (user, password) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))?;
    Some((user, password))
}

fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, password, hash] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

impl Authenticator {
    /// Whether `header` holds the credentials of one of `users`; true when there are no
    /// users at all. A bcrypt verification runs off the I/O threads.
    pub async fn allows(
        self: &Arc<Self>,
        users: &BTreeMap<String, String>,
        header: Option<&HeaderValue>,
    ) -> bool {
        if users.is_empty() {
            return true;
        }
        let Some((user, password)) = header.and_then(credentials) else {
            return false;
        };
        let (known, hash) = match users.get(&user) {
            Some(hash) => (true, hash),
            // Not empty, see above.
            None => match users.values().next() {
                Some(hash) => (false, hash),
                None => return false,
            },
        };
        let hash = hash.clone();
        let key = cache_key(&user, &password, &hash);
        if known && self.verified().contains(&key) {
            return true;
        }
        let verified =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if !(known && verified) {
            return false;
        }
        let mut cache = self.verified();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key);
        true
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
        HeaderValue::try_from(format!("Basic {encoded}")).expect("header value")
    }

    #[tokio::test]
    async fn only_the_right_password_of_a_known_user_passes() {
        let hash = bcrypt::hash("secret", 4).expect("hash");
        let users = BTreeMap::from([("alice".to_owned(), hash)]);
        let auth = Arc::new(Authenticator::default());
        assert!(auth.allows(&users, Some(&basic("alice:secret"))).await);
        // Now from the cache, and still only for the right password.
        assert!(auth.allows(&users, Some(&basic("alice:secret"))).await);
        assert_eq!(auth.verified().len(), 1);
        assert!(!auth.allows(&users, Some(&basic("alice:wrong"))).await);
        assert!(!auth.allows(&users, Some(&basic("bob:secret"))).await);
        assert!(!auth.allows(&users, None).await);
        assert!(
            !auth
                .allows(&users, Some(&HeaderValue::from_static("Bearer x")))
                .await
        );
        assert!(auth.allows(&BTreeMap::new(), None).await);
    }
}
