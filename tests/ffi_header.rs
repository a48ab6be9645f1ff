//! The committed C header is exactly what cbindgen generates from the code,
//! its version macros match Cargo.toml, and the C and C++ headers compile on
//! their own.
//!
//! Regenerate the header with `PRIVSEG_BLESS=1 cargo test --test ffi_header`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The version in Cargo.toml, read from the file itself.
fn cargo_toml_version() -> String {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let line = text
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find(|l| l.trim_start().starts_with("version"))
        .expect("a version in [package]");
    line.split('"').nth(1).unwrap().to_string()
}

fn version_macros(version: &str) -> String {
    let mut parts = version.split(['.', '-', '+']);
    let mut next = || parts.next().unwrap_or("0").to_string();
    let (major, minor, patch) = (next(), next(), next());
    format!(
        "#define PRIVSEG_VERSION \"{version}\"\n\
         #define PRIVSEG_VERSION_MAJOR {major}\n\
         #define PRIVSEG_VERSION_MINOR {minor}\n\
         #define PRIVSEG_VERSION_PATCH {patch}\n"
    )
}

fn generate() -> String {
    let dir = root();
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    config.after_includes = Some(version_macros(&cargo_toml_version()));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn header_is_up_to_date() {
    let path = root().join("include/privseg.h");
    let fresh = generate();
    if std::env::var_os("PRIVSEG_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(fresh.lines().count()));
        panic!(
            "include/privseg.h is out of date (first difference at line {}).\n\
             Regenerate it with:\n    PRIVSEG_BLESS=1 cargo test --test ffi_header\n",
            first + 1
        );
    }
}

#[test]
fn version_macros_match_cargo_toml() {
    let version = cargo_toml_version();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let header = std::fs::read_to_string(root().join("include/privseg.h")).unwrap();
    let define = |name: &str| {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("{name} is not defined in the header"))
            .trim()
            .to_string()
    };
    let mut parts = version.split('.');
    assert_eq!(define("PRIVSEG_VERSION_MAJOR"), parts.next().unwrap());
    assert_eq!(define("PRIVSEG_VERSION_MINOR"), parts.next().unwrap());
    assert_eq!(define("PRIVSEG_VERSION_PATCH"), parts.next().unwrap());
    assert_eq!(define("PRIVSEG_VERSION"), format!("\"{version}\""));
    // SAFETY: privseg_version returns a static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(privseg::ffi::privseg_version()) };
    assert_eq!(v.to_str().unwrap(), version);
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn syntax_check(compiler: &str, args: &[&str], header: &Path) {
    if !have(compiler) {
        println!("skipped: {compiler} is not installed");
        return;
    }
    let out = Command::new(compiler)
        .args(args)
        .arg("-fsyntax-only")
        .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror"])
        .arg(header)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{compiler} {args:?} {}:\n{}",
        header.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn c_header_compiles_alone_in_c_and_cpp() {
    let h = root().join("include/privseg.h");
    syntax_check("gcc", &["-std=c11", "-x", "c"], &h);
    syntax_check("g++", &["-std=c++17", "-x", "c++"], &h);
}

#[test]
fn cpp_header_compiles_alone() {
    let h = root().join("include/privseg.hpp");
    syntax_check("g++", &["-std=c++17", "-x", "c++"], &h);
}
