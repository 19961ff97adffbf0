//! Basic authentication against the bcrypt hashes of the web config. bcrypt is slow on
//! purpose, which makes every verification a cost a client can impose, so:
//!
//! - a password once verified is remembered (by a SHA-256 of the user, the password and the
//!   hash, never the password itself), and later requests cost a hash, not a bcrypt round;
//! - a refused one is remembered the same way for a while, so that a client repeating a
//!   wrong password costs a hash too (the refusal is exact: the same password against the
//!   same hash fails again, so the time bounds only how long the memory is kept);
//! - one verification runs at a time, off the I/O threads; a request that would need
//!   another is answered at once as [`Verdict::Busy`], so that wrong passwords take one core
//!   at most and never queue, and a right one that found the verifier busy passes at a later
//!   scrape and from memory after that.
//!
//! None of this holds a request slot (see `policy`): a flood of wrong passwords cannot
//! keep a scraper whose password is remembered from being served.
//!
//! An unknown user's password is checked against a configured user's hash, the result
//! thrown away, so that a refusal takes as long whether the user exists or not (a dummy
//! hash of its own would have a cost of its own); its refusal is remembered as a wrong
//! password's is.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use base64::Engine;
use tokio::sync::Semaphore;

/// Passwords remembered at most, of each kind (verified, refused); past that the verified
/// ones are forgotten all at once, the refused ones once those past their time are.
const CACHE_ENTRIES: usize = 1024;

/// How long a refused password is remembered.
const REFUSAL_MEMORY: Duration = Duration::from_secs(60);

/// bcrypt verifications running at once, at most.
const VERIFICATIONS_AT_ONCE: usize = 1;

/// What [`Authenticator::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No users are configured, or the credentials are those of one.
    Allowed,
    /// Credentials missing, malformed or wrong.
    Refused,
    /// The credentials need a verification and one is running already: not checked.
    Busy,
}

/// Checks credentials, remembering those verified and those refused.
#[derive(Debug)]
pub struct Authenticator {
    verified: Mutex<HashSet<[u8; 32]>>,
    /// Refused credentials, each until when it is remembered.
    refused: Mutex<HashMap<[u8; 32], Instant>>,
    verifying: Arc<Semaphore>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self {
            verified: Mutex::default(),
            refused: Mutex::default(),
            verifying: Arc::new(Semaphore::new(VERIFICATIONS_AT_ONCE)),
        }
    }
}

/// User and password of an `Authorization: Basic` header; the scheme's name is
/// case-insensitive (RFC 9110, 11.1).
fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let (scheme, encoded) = header.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (user, password) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))?;
    Some((user, password))
}

/// What credentials are remembered by: whether the user is configured (an unknown user's
/// password is checked against another user's hash), user, password and hash.
fn cache_key(known: bool, user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(&[u8::from(known)]);
    for part in [user, password, hash] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

fn bcrypt_verify(password: String, hash: String) -> bool {
    bcrypt::verify(password, &hash).unwrap_or(false)
}

impl Authenticator {
    /// Whether `header` holds the credentials of one of `users`; allowed when there are no
    /// users at all.
    pub async fn check(
        &self,
        users: &BTreeMap<String, String>,
        header: Option<&HeaderValue>,
    ) -> Verdict {
        self.check_with(users, header, bcrypt_verify).await
    }

    /// [`Authenticator::check`], verifying a password against a hash with `verify`.
    async fn check_with(
        &self,
        users: &BTreeMap<String, String>,
        header: Option<&HeaderValue>,
        verify: impl FnOnce(String, String) -> bool + Send + 'static,
    ) -> Verdict {
        if users.is_empty() {
            return Verdict::Allowed;
        }
        let Some((user, password)) = header.and_then(credentials) else {
            return Verdict::Refused;
        };
        let (known, hash) = match users.get(&user) {
            Some(hash) => (true, hash),
            // Not empty, see above.
            None => match users.values().next() {
                Some(hash) => (false, hash),
                None => return Verdict::Refused,
            },
        };
        let key = cache_key(known, &user, &password, hash);
        if known && self.verified().contains(&key) {
            return Verdict::Allowed;
        }
        if self
            .refused()
            .get(&key)
            .is_some_and(|&until| Instant::now() < until)
        {
            return Verdict::Refused;
        }
        let Ok(permit) = Arc::clone(&self.verifying).try_acquire_owned() else {
            return Verdict::Busy;
        };
        let hash = hash.clone();
        // The permit goes with the verification: a client that hangs up does not end it.
        let verified = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify(password, hash)
        })
        .await
        .unwrap_or(false);
        if known && verified {
            let mut cache = self.verified();
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key);
            Verdict::Allowed
        } else {
            let now = Instant::now();
            let mut refused = self.refused();
            if refused.len() >= CACHE_ENTRIES {
                refused.retain(|_, until| now < *until);
                if refused.len() >= CACHE_ENTRIES {
                    refused.clear();
                }
            }
            refused.insert(key, now + REFUSAL_MEMORY);
            Verdict::Refused
        }
    }

    fn verified(&self) -> MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refused(&self) -> MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.refused.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn basic(user_password: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
        HeaderValue::try_from(format!("Basic {encoded}")).expect("header value")
    }

    fn users() -> BTreeMap<String, String> {
        let hash = bcrypt::hash("secret", 4).expect("hash");
        BTreeMap::from([("alice".to_owned(), hash)])
    }

    /// bcrypt, counting its runs in `runs`.
    fn counted(runs: &Arc<AtomicUsize>) -> impl FnOnce(String, String) -> bool + Send + 'static {
        let runs = Arc::clone(runs);
        move |password, hash| {
            runs.fetch_add(1, Ordering::Relaxed);
            bcrypt_verify(password, hash)
        }
    }

    #[tokio::test]
    async fn only_the_right_password_of_a_known_user_passes() {
        let users = users();
        let auth = Authenticator::default();
        assert_eq!(
            auth.check(&users, Some(&basic("alice:secret"))).await,
            Verdict::Allowed
        );
        // Now from the cache, and still only for the right password.
        assert_eq!(
            auth.check(&users, Some(&basic("alice:secret"))).await,
            Verdict::Allowed
        );
        assert_eq!(auth.verified().len(), 1);
        assert_eq!(
            auth.check(&users, Some(&basic("alice:wrong"))).await,
            Verdict::Refused
        );
        assert_eq!(
            auth.check(&users, Some(&basic("bob:secret"))).await,
            Verdict::Refused
        );
        assert_eq!(auth.check(&users, None).await, Verdict::Refused);
        let bearer = HeaderValue::from_static("Bearer x");
        assert_eq!(auth.check(&users, Some(&bearer)).await, Verdict::Refused);
        assert_eq!(auth.check(&BTreeMap::new(), None).await, Verdict::Allowed);
    }

    #[tokio::test]
    async fn the_scheme_is_case_insensitive() {
        let users = users();
        let auth = Authenticator::default();
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:secret");
        for scheme in ["basic", "BASIC", "bAsIc"] {
            let header = HeaderValue::try_from(format!("{scheme}  {encoded}")).expect("value");
            assert_eq!(
                auth.check(&users, Some(&header)).await,
                Verdict::Allowed,
                "{scheme}"
            );
        }
        let header = HeaderValue::try_from(format!("Basicx {encoded}")).expect("value");
        assert_eq!(auth.check(&users, Some(&header)).await, Verdict::Refused);
    }

    #[tokio::test]
    async fn a_refusal_is_remembered_for_a_while_and_costs_no_second_bcrypt() {
        let users = users();
        let auth = Authenticator::default();
        let runs = Arc::new(AtomicUsize::new(0));
        for credentials in ["alice:wrong", "bob:secret"] {
            for _ in 0..3 {
                let verdict = auth
                    .check_with(&users, Some(&basic(credentials)), counted(&runs))
                    .await;
                assert_eq!(verdict, Verdict::Refused, "{credentials}");
            }
        }
        // Once for the wrong password, once for the unknown user.
        assert_eq!(runs.load(Ordering::Relaxed), 2);
        // The right password is not refused for the wrong one's sake.
        let verdict = auth
            .check_with(&users, Some(&basic("alice:secret")), counted(&runs))
            .await;
        assert_eq!(verdict, Verdict::Allowed);
        assert_eq!(runs.load(Ordering::Relaxed), 3);
        // Past its time, a refusal is verified again.
        let now = Instant::now();
        auth.refused().values_mut().for_each(|until| *until = now);
        let verdict = auth
            .check_with(&users, Some(&basic("alice:wrong")), counted(&runs))
            .await;
        assert_eq!(verdict, Verdict::Refused);
        assert_eq!(runs.load(Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn the_refusals_remembered_are_bounded() {
        let users = users();
        let auth = Authenticator::default();
        for i in 0..CACHE_ENTRIES + 5 {
            let header = basic(&format!("alice:wrong {i}"));
            let verdict = auth.check_with(&users, Some(&header), |_, _| false).await;
            assert_eq!(verdict, Verdict::Refused);
            assert!(auth.refused().len() <= CACHE_ENTRIES);
        }
    }

    #[tokio::test]
    async fn a_verification_past_the_bound_is_not_run_and_answered_at_once() {
        let users = users();
        let auth = Arc::new(Authenticator::default());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn({
            let (auth, users) = (Arc::clone(&auth), users.clone());
            async move {
                let header = basic("alice:first");
                auth.check_with(&users, Some(&header), move |_, _| {
                    started_tx.send(()).expect("report the start");
                    // Held until the test has seen the refusals below.
                    release_rx.recv().expect("released");
                    false
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || started_rx.recv().expect("started"))
            .await
            .expect("wait for the verification");
        let runs = Arc::new(AtomicUsize::new(0));
        for credentials in ["alice:second", "bob:third", "alice:secret"] {
            let verdict = auth
                .check_with(&users, Some(&basic(credentials)), counted(&runs))
                .await;
            assert_eq!(verdict, Verdict::Busy, "{credentials}");
        }
        assert_eq!(runs.load(Ordering::Relaxed), 0);
        release_tx.send(()).expect("release");
        assert_eq!(running.await.expect("verification"), Verdict::Refused);
        // Free again.
        let verdict = auth
            .check_with(&users, Some(&basic("alice:secret")), counted(&runs))
            .await;
        assert_eq!(verdict, Verdict::Allowed);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    }
}
