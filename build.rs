//! Names the cargo profile and optimization level this build was made with,
//! so every report says which build its figures were measured on: a figure
//! read on an unoptimized build is not the figure a service ships.

fn main() {
    // Cargo tells a build script the opt-level and whether debug assertions
    // are on, but names only `debug` or `release` as PROFILE; a custom
    // profile (`measure`) is the directory under the target dir that
    // OUT_DIR lies in: <target>/<profile>/build/<pkg>-<hash>/out.
    let out_dir = std::env::var("OUT_DIR").unwrap_or_default();
    let profile = std::path::Path::new(&out_dir)
        .ancestors()
        .nth(3)
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .map(|n| if n == "debug" { "dev" } else { n })
        .unwrap_or("unknown")
        .to_owned();
    let opt_level = std::env::var("OPT_LEVEL").unwrap_or_else(|_| "?".into());
    let assertions = if std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some() {
        "on"
    } else {
        "off"
    };
    println!(
        "cargo:rustc-env=TIDEPOOL_BUILD=profile {profile}, opt-level {opt_level}, debug assertions {assertions}"
    );
    println!("cargo:rerun-if-changed=build.rs");
}
