//! argon2id password hashing with configured cost, on a fixed set of threads.
//!
//! Every hash and every verification runs on one of `auth.password_threads` threads, each of which owns
//! one argon2 memory buffer (`argon2_memory_kib`) and reuses it for every password it handles, so the
//! memory that hashing holds is threads × buffer whatever the load. Requests wait in a queue of at most
//! `auth.password_queue`; past it they are refused at once ([`PasswordError::Busy`], answered 503 with
//! `Retry-After`) instead of piling up threads and buffers. docs/security.md says why.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use crate::config::AuthSettings;

/// Seconds a client refused for a full queue is told to wait.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing thread is busy and the queue is full.
    #[error("password hashing is saturated")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// One unit of work for a hashing thread, given that thread's reusable memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    /// A hash of a random password, verified against when the phone is unknown so that an unknown phone
    /// and a wrong password take the same time.
    decoy: String,
    /// Dropping the last sender ends the threads (and frees their buffers).
    jobs: SyncSender<Job>,
}

impl PasswordHasher {
    pub fn new(settings: &AuthSettings) -> anyhow::Result<PasswordHasher> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("auth.argon2_*: {e}"))?;
        let threads = pool_threads(settings.password_threads);
        let (jobs, queue) = mpsc::sync_channel::<Job>(settings.password_queue);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            let blocks = params.block_count();
            std::thread::Builder::new()
                .name(format!("password-{n}"))
                .spawn(move || work(&queue, blocks))
                .map_err(|e| anyhow::anyhow!("starting a password hashing thread: {e}"))?;
        }
        // Random output under a random salt: checking a password against it costs a real verification
        // and never succeeds, and making it costs no hashing (nor a buffer) at start-up.
        let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        OsRng.fill_bytes(&mut output);
        let decoy = phc(&params, &SaltString::generate(&mut OsRng), &output)?;
        Ok(PasswordHasher {
            inner: Arc::new(Inner { params, decoy, jobs }),
        })
    }

    /// Hashes on the pool, waiting for a place in the queue (for the command line and loaders).
    pub fn hash(&self, password: &str) -> anyhow::Result<String> {
        let params = self.inner.params.clone();
        let password = password.to_string();
        run_blocking(&self.inner.jobs, move |blocks| {
            hash_with(&params, blocks, password.as_bytes())
        })?
        .map_err(anyhow::Error::from)
    }

    /// Verifies on the pool, waiting for a place in the queue. See [`Self::verify_queued`].
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let job = self.verify_job(password.to_string(), stored.map(str::to_string));
        matches!(run_blocking(&self.inner.jobs, job), Ok(true))
    }

    /// Hashes on the pool; [`PasswordError::Busy`] at once when the queue is full.
    pub async fn hash_queued(&self, password: String) -> Result<String, PasswordError> {
        let params = self.inner.params.clone();
        run_queued(&self.inner.jobs, move |blocks| {
            hash_with(&params, blocks, password.as_bytes())
        })
        .await?
    }

    /// Verifies `password` against `stored`, or against the decoy when there is no stored hash (false
    /// then, after the same work). The cost parameters come from the stored hash, so hashes made under
    /// older settings still verify. [`PasswordError::Busy`] at once when the queue is full.
    pub async fn verify_queued(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        run_queued(&self.inner.jobs, self.verify_job(password, stored)).await
    }

    fn verify_job(
        &self,
        password: String,
        stored: Option<String>,
    ) -> impl FnOnce(&mut Vec<Block>) -> bool + Send + 'static {
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.inner.decoy.clone());
        move |blocks| verify_with(blocks, password.as_bytes(), &hash) && real
    }
}

/// `configured`, or one thread per core when it is 0.
fn pool_threads(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(2, usize::from)
    }
}

/// A hashing thread: takes jobs until every sender is gone. Its buffer is allocated at the first job.
fn work(queue: &Mutex<Receiver<Job>>, blocks: usize) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if memory.len() < blocks {
            memory = vec![Block::default(); blocks];
        }
        // A job that panics loses its answer (its caller sees the pool as stopped), not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
    }
}

fn package<T: Send + 'static>(
    f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    reply: impl FnOnce(T) + Send + 'static,
) -> Job {
    Box::new(move |blocks| reply(f(blocks)))
}

fn stopped() -> PasswordError {
    PasswordError::Failed("the password hashing threads stopped".into())
}

async fn run_queued<T: Send + 'static>(
    jobs: &SyncSender<Job>,
    f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, PasswordError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = package(f, move |out| {
        let _ = tx.send(out);
    });
    match jobs.try_send(job) {
        Ok(()) => rx.await.map_err(|_| stopped()),
        Err(TrySendError::Full(_)) => Err(PasswordError::Busy),
        Err(TrySendError::Disconnected(_)) => Err(stopped()),
    }
}

fn run_blocking<T: Send + 'static>(
    jobs: &SyncSender<Job>,
    f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, PasswordError> {
    let (tx, rx) = mpsc::sync_channel(1);
    let job = package(f, move |out| {
        let _ = tx.send(out);
    });
    jobs.send(job).map_err(|_| stopped())?;
    rx.recv().map_err(|_| stopped())
}

fn failed(e: impl std::fmt::Display) -> PasswordError {
    PasswordError::Failed(e.to_string())
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), the same as `PasswordHasher::hash_password`.
fn hash_with(params: &Params, memory: &mut [Block], password: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.as_salt().decode_b64(&mut salt_bytes).map_err(failed)?;
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, raw_salt, &mut out, memory)
        .map_err(failed)?;
    phc(params, &salt, &out)
}

fn phc(params: &Params, salt: &SaltString, output: &[u8]) -> Result<String, PasswordError> {
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(output).map_err(failed)?),
    };
    Ok(phc.to_string())
}

/// Recomputes the stored hash's output with its own algorithm, version, cost and salt and compares in
/// constant time. A stored hash that needs more memory than the thread's buffer gets a buffer of its own.
fn verify_with(memory: &mut [Block], password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::default()), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(raw_salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let computed = if memory.len() >= params.block_count() {
        argon2.hash_password_into_with_memory(password, raw_salt, &mut out, memory)
    } else {
        let mut own = vec![Block::default(); params.block_count()];
        argon2.hash_password_into_with_memory(password, raw_salt, &mut out, &mut own)
    };
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn cheap() -> AuthSettings {
        let mut s = crate::config::Settings::defaults().auth;
        s.argon2_memory_kib = 64;
        s.argon2_iterations = 1;
        s.password_threads = 2;
        s
    }

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let stored = h.hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{stored}");
        assert!(h.verify("correct horse battery", Some(&stored)));
        assert!(!h.verify("wrong password!", Some(&stored)));
        assert!(!h.verify("correct horse battery", None));
        assert!(!h.verify("x", Some("not a hash")));
        assert!(h.inner.decoy.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(h.inner.decoy.len(), stored.len());
    }

    #[test]
    fn hashes_are_what_the_argon2_crate_verifies() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let stored = h.hash("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&stored).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
    }

    #[test]
    fn hashes_made_under_other_settings_verify() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        // More memory than the threads' buffers, and other iterations, lanes and output length.
        let older = Params::new(256, 3, 2, Some(24)).unwrap();
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, older)
            .hash_password(b"an older password", &salt)
            .unwrap()
            .to_string();
        assert!(h.verify("an older password", Some(&stored)));
        assert!(!h.verify("an older passworD", Some(&stored)));
        // Less memory, another variant and version.
        let smaller = Params::new(32, 1, 1, None).unwrap();
        let stored = Argon2::new(Algorithm::Argon2i, Version::V0x10, smaller)
            .hash_password(b"an older password", &salt)
            .unwrap()
            .to_string();
        assert!(h.verify("an older password", Some(&stored)));
        assert!(!h.verify("another password", Some(&stored)));
    }

    #[actix_web::test]
    async fn queued_hashing_and_verification() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let stored = h.hash_queued("correct horse battery".into()).await.unwrap();
        assert!(h
            .verify_queued("correct horse battery".into(), Some(stored.clone()))
            .await
            .unwrap());
        assert!(!h.verify_queued("wrong".into(), Some(stored)).await.unwrap());
        assert!(!h
            .verify_queued("correct horse battery".into(), None)
            .await
            .unwrap());
    }

    #[actix_web::test]
    async fn a_full_queue_refuses_at_once() {
        let mut settings = cheap();
        settings.argon2_memory_kib = 8192;
        settings.argon2_iterations = 4;
        settings.password_threads = 1;
        settings.password_queue = 1;
        let h = PasswordHasher::new(&settings).unwrap();
        let attempts = (0..8).map(|_| h.hash_queued("correct horse battery".into()));
        let results = futures_util::future::join_all(attempts).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(PasswordError::Busy)))
            .count();
        let hashed = results.iter().filter(|r| r.is_ok()).count();
        // One on the thread and at most one in the queue; the rest are refused, none fails.
        assert!(hashed >= 1 && busy >= 6 && hashed + busy == 8, "{results:?}");
        assert!(h.hash_queued("correct horse battery".into()).await.is_ok());
    }
}
