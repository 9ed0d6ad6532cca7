//! A full disk and a read-only directory: a clear error that names the file,
//! and what was there before left whole, for reports and the AOT cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use tidepool::profile::{Depth, RunProfile};
use tidepool::report::ScenarioReport;
use tidepool::summary::MetricSummary;
use tidepool::testkit::scratch_dir;
use tidepool::testkit::wasm_fixtures as fixtures;
use tidepool::wasm::{AotCache, CacheOutcome, WasmCacheConfig, WasmEngine, WasmEngineConfig};

const PREVIOUS: &str = "<!DOCTYPE html><p>the previous report</p>";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// A tmpfs at `dir` (root only: `None` otherwise).
    fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
        if !is_root() {
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let options = format!("size={size},mode=0700");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "root could not mount a tmpfs at {}", dir.display());
        Some(Mount(dir.to_owned()))
    }

    fn read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "could not remount {} read-only", self.0.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Makes `dir` read-only the way this user can: a read-only remount of a
/// tmpfs for root (whom permissions do not stop), mode 0555 otherwise.
fn read_only_dir(dir: &Path) -> Option<Mount> {
    match Mount::tmpfs(dir, "1m") {
        Some(mount) => Some(mount),
        None => {
            std::fs::create_dir_all(dir).unwrap();
            None
        }
    }
}

fn seal(dir: &Path, mount: &Option<Mount>) {
    match mount {
        Some(m) => m.read_only(),
        None => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
    }
}

fn a_report(dir: &Path) -> PathBuf {
    let mut s = MetricSummary::new("demo", RunProfile::new(Depth::Quick, None));
    s.measure(
        "page_ms",
        "ms",
        &(0..200).map(f64::from).collect::<Vec<_>>(),
    )
    .unwrap();
    tidepool::report::write_json(&ScenarioReport::new(s, Vec::new()), dir).unwrap()
}

/// `tidepool report INPUT --format html --output OUTPUT` under `prelude`, a
/// shell line run first (a resource limit, say).
fn render(prelude: &str, input: &Path, output: &Path) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{prelude} exec \"$0\" report \"$1\" --format html --output \"$2\""
        ))
        .arg(env!("CARGO_BIN_EXE_tidepool"))
        .arg(input)
        .arg(output)
        .output()
        .unwrap()
}

/// The failed write: exit 2, the output named with the system's reason, the
/// previous file whole and no temporary left beside it.
fn assert_refused_and_intact(out: &Output, page: &Path, reason: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&page.display().to_string()), "{stderr}");
    assert!(reason.iter().any(|r| stderr.contains(r)), "{stderr}");
    assert_eq!(std::fs::read_to_string(page).unwrap(), PREVIOUS);
    let names: Vec<String> = std::fs::read_dir(page.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["report.html".to_owned()],
        "a temporary was left"
    );
}

#[test]
fn a_report_that_does_not_fit_on_the_disk_fails_naming_it_and_the_previous_one_stays() {
    let scratch = scratch_dir("tidepool-full-").unwrap();
    let input = a_report(scratch.path());
    // The file-size limit cuts the write short as a full disk would (EFBIG
    // instead of ENOSPC), for any user.
    let limited = scratch.path().join("limited");
    std::fs::create_dir_all(&limited).unwrap();
    let page = limited.join("report.html");
    std::fs::write(&page, PREVIOUS).unwrap();
    let out = render("trap '' XFSZ; ulimit -f 8;", &input, &page);
    assert_refused_and_intact(&out, &page, &["File too large"]);
    // A disk that is really full: a 16 KiB tmpfs (the page is about 20), for root.
    let tiny = scratch.path().join("tiny");
    if let Some(_mount) = Mount::tmpfs(&tiny, "16k") {
        let page = tiny.join("report.html");
        std::fs::write(&page, PREVIOUS).unwrap();
        let out = render("", &input, &page);
        assert_refused_and_intact(&out, &page, &["No space left on device"]);
    }
}

#[test]
fn a_read_only_report_directory_fails_naming_the_report_and_the_previous_one_stays() {
    let scratch = scratch_dir("tidepool-ro-").unwrap();
    let input = a_report(scratch.path());
    let dir = scratch.path().join("sealed");
    let mount = read_only_dir(&dir);
    let page = dir.join("report.html");
    std::fs::write(&page, PREVIOUS).unwrap();
    seal(&dir, &mount);
    let out = render("", &input, &page);
    assert_refused_and_intact(&out, &page, &["Read-only file system", "Permission denied"]);
}

#[test]
fn a_read_only_cache_still_serves_compiled_modules_and_keeps_its_entries() {
    let scratch = scratch_dir("tidepool-ro-cache-").unwrap();
    let dir = scratch.path().join("cache");
    let mount = read_only_dir(&dir);
    let engine = WasmEngine::new(WasmEngineConfig::default()).unwrap();
    let stored = fixtures::extractor_variant(1).unwrap();
    let entry = {
        let cache = AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap();
        cache.load(&engine, "stored", &stored).unwrap();
        cache.entry_path(&stored)
    };
    let before = std::fs::read(&entry).unwrap();
    seal(&dir, &mount);

    let cache = Arc::new(AotCache::open(WasmCacheConfig::new(&dir), &engine).unwrap());
    let (_, outcome) = cache.load(&engine, "stored", &stored).unwrap();
    assert_eq!(outcome, CacheOutcome::Hit);
    let fresh = fixtures::extractor_variant(2).unwrap();
    let (module, outcome) = cache.load(&engine, "fresh", &fresh).unwrap();
    assert_eq!(outcome, CacheOutcome::Compiled);
    assert!(
        module.get_export("id").is_some(),
        "the compiled module is served"
    );
    let stats = cache.stats();
    assert_eq!((stats.write_failures, stats.hits), (1, 1), "{stats:?}");
    assert!(!cache.entry_path(&fresh).exists());
    assert_eq!(
        std::fs::read(&entry).unwrap(),
        before,
        "the stored entry is untouched"
    );
    drop(mount);
}
