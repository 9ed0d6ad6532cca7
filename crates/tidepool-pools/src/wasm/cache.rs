use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module, Precompiled};

use super::engine::WasmEngine;
use crate::error::{Error, Result};
use crate::recording::Counter;

/// Where and how much the AOT cache keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmCacheConfig {
    /// The cache directory, created owner-only (0700) if missing.
    pub cache_dir: PathBuf,
    /// Total size of entries before the least recently used are evicted
    /// (default 10 MB, the original spec's figure).
    pub max_size_bytes: u64,
    /// Entries unused for longer are removed (default 7 days).
    pub ttl: Duration,
}

impl WasmCacheConfig {
    /// Defaults for `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> WasmCacheConfig {
        WasmCacheConfig {
            cache_dir: cache_dir.into(),
            max_size_bytes: 10_000_000,
            ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Counters of the AOT cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// Loads served from a verified entry.
    pub hits: u64,
    /// Loads that found no usable entry.
    pub misses: u64,
    /// Modules compiled (each miss compiles).
    pub compiles: u64,
    /// Entries removed for size or age.
    pub evictions: u64,
    /// Entries found corrupt, truncated or foreign, removed and recompiled.
    pub corrupt: u64,
    /// Compiled modules that could not be stored (a full disk, a read-only
    /// directory): served uncached, the entries already there untouched.
    pub write_failures: u64,
}

/// How a load was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CacheOutcome {
    /// From a verified entry.
    Hit,
    /// Compiled: there was no entry (or it had expired).
    Compiled,
    /// Compiled after removing a corrupt, truncated or foreign entry.
    Recompiled,
}

/// Magic at the start of every entry; the version byte changes with the layout
/// (2: a keyed MAC where version 1 had a plain SHA-256).
const MAGIC: &[u8; 8] = b"TPAOT\x00\x02\n";
/// Magic, then the HMAC-SHA-256 of the payload under the cache's key, then
/// the payload.
const HEADER: usize = MAGIC.len() + 32;
/// [`HEADER`], for the scenario that plants entries.
#[cfg(feature = "controls")]
pub(crate) const ENTRY_HEADER: usize = HEADER;
/// The cache's secret, beside its entries, readable by its owner only.
const KEY_FILE: &str = "entries.key";

type HmacSha256 = Hmac<Sha256>;

/// A content-addressed cache of precompiled modules on disk.
///
/// An entry's name is the SHA-256 of the module's bytes and the engine's
/// [`precompile_compatibility_hash`](Engine::precompile_compatibility_hash), so
/// a wasmtime upgrade or a changed engine config never even looks at an old
/// artifact. Inside, a header carries the HMAC-SHA-256 of the serialized
/// module under a secret of the cache's own (`entries.key`, mode 0600), checked
/// before anything is handed to wasmtime, so a file planted with a plain
/// matching hash is refused like a damaged one. wasmtime's artifacts carry no
/// checksum, and a flipped byte in one can crash the process or compute wrong
/// results (measured: 33 of 150 single-byte flips). Then
/// [`Engine::detect_precompiled`] must recognise a module, and
/// [`Module::deserialize`] must accept it; any failure removes the entry, logs
/// a warning and recompiles. Writes go through a temporary file and a rename,
/// so two processes filling the same entry each write a whole file. The
/// directory must belong to this user and be writable by nobody else.
#[derive(Debug)]
pub struct AotCache {
    config: WasmCacheConfig,
    engine_key: String,
    hits: Counter,
    misses: Counter,
    compiles: Counter,
    evictions: Counter,
    corrupt: Counter,
    write_failures: Counter,
    /// The per-cache secret the entries' MACs are keyed with.
    key: [u8; 32],
    /// Off only in the negative control that shows the checksum matters.
    verify_checksum: bool,
}

impl AotCache {
    /// Opens (creating owner-only) the cache directory for `engine`.
    pub fn open(config: WasmCacheConfig, engine: &WasmEngine) -> Result<AotCache> {
        if config.max_size_bytes == 0 {
            return Err(Error::config(
                "wasm_cache.max_size_bytes",
                "must be greater than zero",
            ));
        }
        if config.ttl.is_zero() {
            return Err(Error::config("wasm_cache.ttl", "must be greater than zero"));
        }
        create_private_dir(&config.cache_dir)?;
        let key = cache_key(&config.cache_dir)?;
        // SHA-256 rather than std's DefaultHasher, whose output may change
        // between Rust releases: the key must name the same entry in every build.
        let mut h = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.engine.precompile_compatibility_hash(), &mut h);
        let engine_key = hex(&h.0.finalize()[..8]);
        Ok(AotCache {
            config,
            engine_key,
            hits: Counter::new("tidepool_wasm_cache_hits_total"),
            misses: Counter::new("tidepool_wasm_cache_misses_total"),
            compiles: Counter::new("tidepool_wasm_cache_compiles_total"),
            evictions: Counter::new("tidepool_wasm_cache_evictions_total"),
            corrupt: Counter::new("tidepool_wasm_cache_rejections_total"),
            write_failures: Counter::new("tidepool_wasm_cache_write_failures_total"),
            key,
            verify_checksum: true,
        })
    }

    /// A broken cache, for the `aot_cache` negative control only: it skips
    /// its own checksum and trusts wasmtime's header check. The control feeds
    /// it only damage that wasmtime survives (bytes appended to an artifact,
    /// an artifact of another engine); never use it for real work.
    #[cfg(feature = "controls")]
    pub(crate) fn skipping_checksum_for_control(mut self) -> AotCache {
        self.verify_checksum = false;
        self
    }

    /// The entry path for module bytes `wasm` under this engine.
    pub fn entry_path(&self, wasm: &[u8]) -> PathBuf {
        let digest = hex(&Sha256::digest(wasm));
        self.config
            .cache_dir
            .join(format!("{digest}-{}.tpaot", self.engine_key))
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            compiles: self.compiles.get(),
            evictions: self.evictions.get(),
            corrupt: self.corrupt.get(),
            write_failures: self.write_failures.get(),
        }
    }

    /// The module for `wasm` (module `id`): from a verified entry, or compiled
    /// and stored.
    pub fn load(
        &self,
        engine: &WasmEngine,
        id: &str,
        wasm: &[u8],
    ) -> Result<(Module, CacheOutcome)> {
        let path = self.entry_path(wasm);
        let mut removed_bad = false;
        match self.read_entry(&engine.engine, &path) {
            Ok(Some(module)) => {
                self.hits.incr();
                // The access time drives LRU eviction; failing to set it only
                // makes the entry look older.
                if let Ok(file) = std::fs::File::options().write(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
                return Ok((module, CacheOutcome::Hit));
            }
            Ok(None) => {}
            Err(problem) => {
                tracing::warn!(module = id, entry = %path.display(), %problem, "removing a bad AOT cache entry and recompiling");
                self.corrupt.incr();
                let _ = std::fs::remove_file(&path);
                removed_bad = true;
            }
        }
        self.misses.incr();
        let module = engine.compile(id, wasm)?;
        self.compiles.incr();
        let payload = module.serialize().map_err(|e| Error::Wasm {
            module: id.to_owned(),
            fault: crate::WasmFault::Compile,
            message: format!("serializing: {e:#}"),
        })?;
        // A cache that cannot store (its disk full, its directory made
        // read-only) still serves: the module is compiled and right, only
        // not kept. The write goes through a temporary file, so an entry
        // already there is never left half-written.
        match crate::atomic_file::write_atomic(&path, &self.encode_entry(&payload)) {
            Ok(()) => self.evict()?,
            Err(e) => {
                self.write_failures.incr();
                tracing::warn!(module = id, error = %e, "could not store a compiled module in the AOT cache; serving it uncached");
            }
        }
        let outcome = if removed_bad {
            CacheOutcome::Recompiled
        } else {
            CacheOutcome::Compiled
        };
        Ok((module, outcome))
    }

    /// `Ok(None)`: no usable entry (missing or expired). `Err`: a bad entry, and why.
    fn read_entry(
        &self,
        engine: &Engine,
        path: &Path,
    ) -> std::result::Result<Option<Module>, String> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .unwrap_or_default();
        if age > self.config.ttl {
            if std::fs::remove_file(path).is_ok() {
                self.evictions.incr();
            }
            return Ok(None);
        }
        let bytes = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
            return Err(format!(
                "truncated or not a tidepool entry ({} bytes)",
                bytes.len()
            ));
        }
        let (mac, payload) = bytes[MAGIC.len()..].split_at(32);
        if self.verify_checksum && self.mac(payload).verify_slice(mac).is_err() {
            return Err(
                "MAC mismatch: the artifact was modified, truncated or not written by this cache"
                    .into(),
            );
        }
        if Engine::detect_precompiled(payload) != Some(Precompiled::Module) {
            return Err("not a precompiled wasmtime module".into());
        }
        deserialize(engine, payload).map(Some)
    }

    /// Removes entries past the TTL, then the least recently used until the
    /// total fits `max_size_bytes`.
    fn evict(&self) -> Result<()> {
        let dir = &self.config.cache_dir;
        let entries =
            std::fs::read_dir(dir).map_err(|e| Error::io("listing the AOT cache", dir, e))?;
        let mut files: Vec<(PathBuf, u64, SystemTime)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "tpaot"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((e.path(), meta.len(), meta.modified().ok()?))
            })
            .collect();
        files.sort_by_key(|f| f.2);
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        let now = SystemTime::now();
        for (path, len, modified) in &files {
            let expired = now.duration_since(*modified).unwrap_or_default() > self.config.ttl;
            if (expired || total > self.config.max_size_bytes) && std::fs::remove_file(path).is_ok()
            {
                total -= len;
                self.evictions.incr();
            }
        }
        Ok(())
    }
}

impl AotCache {
    /// The MAC of `payload` under this cache's key, ready to finalize or verify.
    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(payload);
        mac
    }

    /// A well-formed entry holding `payload`: magic, its MAC under this
    /// cache's key, payload.
    pub(crate) fn encode_entry(&self, payload: &[u8]) -> Vec<u8> {
        entry(&self.mac(payload).finalize().into_bytes(), payload)
    }
}

/// Magic, the 32-byte `digest`, then `payload`: the one layout of an entry.
fn entry(digest: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(HEADER + payload.len());
    entry.extend_from_slice(MAGIC);
    entry.extend_from_slice(digest);
    entry.extend_from_slice(payload);
    entry
}

/// An entry of the layout before MACs, a plain SHA-256 of its payload: what
/// anyone who can write to the directory could plant.
#[cfg(feature = "controls")]
pub(crate) fn plain_hash_entry(payload: &[u8]) -> Vec<u8> {
    entry(&Sha256::digest(payload), payload)
}

/// Refuses `path` unless this user owns it and nobody else may write to it
/// (`private`: nor read it); the error names the path and its mode.
fn check_owned(path: &Path, field: &str, private: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| Error::io("reading the AOT cache", path, e))?;
    let (uid, mode) = (crate::os::uid(), meta.mode() & 0o7777);
    let refuse = |why: String| Err(Error::config(field, format!("{}: {why}", path.display())));
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link; the cache follows none".into());
    }
    if meta.uid() != uid {
        return refuse(format!(
            "is owned by uid {}, not this user (uid {uid})",
            meta.uid()
        ));
    }
    let forbidden = if private { 0o077 } else { 0o022 };
    if mode & forbidden != 0 {
        return refuse(format!(
            "has mode {mode:o}: {} by others, so anyone could plant an artifact that is run as code",
            if private { "readable or writable" } else { "writable" }
        ));
    }
    Ok(())
}

/// The cache's secret: read from `entries.key` (owned by this user, mode
/// 0600), or made from /dev/urandom and linked into place atomically, so two
/// processes opening a new cache agree on one key.
fn cache_key(dir: &Path) -> Result<[u8; 32]> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(KEY_FILE);
    if !path.exists() {
        let mut key = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(|e| Error::io("reading random bytes", "/dev/urandom", e))?;
        let tmp = dir.join(format!(
            ".{KEY_FILE}.{}.{}",
            std::process::id(),
            hex(&key[..4])
        ));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&key).and_then(|()| f.sync_all()))
            .map_err(|e| Error::io("writing the AOT cache key", &tmp, e))?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("installing the AOT cache key", &path, e)),
        }
    }
    check_owned(&path, "wasm_cache.cache_dir", true)?;
    let bytes =
        std::fs::read(&path).map_err(|e| Error::io("reading the AOT cache key", &path, e))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        Error::config(
            "wasm_cache.cache_dir",
            format!("{}: a key of {} bytes, not 32", path.display(), b.len()),
        )
    })
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, payload: &[u8]) -> std::result::Result<Module, String> {
    // SAFETY: `Module::deserialize` requires bytes produced by
    // `Module::serialize` or `Engine::precompile_module` and not modified since.
    // The caller verified `payload` against the MAC the cache recorded, under
    // its own secret key, when it wrote the output of `Module::serialize`, so
    // nobody without the key can have written it; wasmtime itself rejects (with
    // an error, safely) artifacts of another wasmtime version or engine config.
    // The one exception is the negative control's cache, which skips the
    // checksum and is only ever given serialize output with bytes appended,
    // which wasmtime's object parser ignores.
    unsafe { Module::deserialize(engine, payload) }
        .map_err(|e| format!("wasmtime refused it: {e:#}"))
}

/// Creates the cache directory owner-only, or accepts an existing one only
/// if this user owns it and nobody else can write to it: whoever can write
/// there could otherwise plant code that `Module::deserialize` runs.
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("creating the AOT cache", dir, e))?;
    }
    check_owned(dir, "wasm_cache.cache_dir", false)
}

/// Feeds `Hash` input into SHA-256.
struct ShaHasher(Sha256);

impl std::hash::Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Only `write` is used; the digest is read from the inner hasher.
        0
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
