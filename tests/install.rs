//! Installs the C library with `scripts/install.sh` into a temporary prefix
//! and builds the C and C++ examples against it exactly as the README says:
//! `pkg-config --cflags --libs privseg`, then runs them. Also checks the
//! shared library's SONAME, a static link through `pkg-config --static`,
//! and, where cmake is installed, `find_package(privseg)`.
//!
//! A tool that is not installed is skipped with a printed reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", show(&out));
    out
}

/// A fresh prefix with the library installed (once per test run). The
/// build shares its cargo target directory with the C program tests, so
/// the dependencies are compiled once.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let base = root().join("target").join("install-test");
        let prefix = base.join("prefix");
        let _ = std::fs::remove_dir_all(&prefix);
        std::fs::create_dir_all(&base).unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        ok(Command::new("sh")
            .arg(root().join("scripts/install.sh"))
            .arg("--debug")
            .arg(&prefix)
            .env("CARGO", cargo)
            .env(
                "CARGO_TARGET_DIR",
                root().join("target").join("ffi-tests").join("cargo"),
            ));
        prefix
    })
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = ok(Command::new("pkg-config")
        .args(args)
        .arg("privseg")
        .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig")));
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn tools(list: &[&str]) -> bool {
    for t in list {
        if !have(t) {
            println!("skipped: {t} is not installed");
            return false;
        }
    }
    true
}

/// Runs an example program on the example policy; it prints the members of
/// its segment, its refusals and its export.
fn run_example(exe: &Path) -> String {
    let out = ok(Command::new(exe)
        .current_dir(root())
        .arg("examples/c/policy.json")
        .env("LD_LIBRARY_PATH", prefix().join("lib")));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!("privseg {}\n", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    let members: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("member "))
        .collect();
    assert_eq!(members, ["c-1", "c-6"], "{stdout}");
    stdout
}

/// Compiles `source` with `compiler` and the pkg-config flags, as the
/// README shows.
fn build(compiler: &str, std: &str, source: &str, name: &str, flags: &[String]) -> PathBuf {
    let exe = prefix().parent().unwrap().join(name);
    ok(Command::new(compiler)
        .current_dir(root())
        .arg(std)
        .arg(source)
        .args(flags)
        .arg("-o")
        .arg(&exe));
    exe
}

#[test]
fn installs_the_files_with_a_soname() {
    if !tools(&["readelf"]) {
        return;
    }
    let p = prefix();
    let v = env!("CARGO_PKG_VERSION");
    for f in [
        format!("lib/libprivseg.so.{v}"),
        "lib/libprivseg.so".into(),
        "lib/libprivseg.a".into(),
        "include/privseg.h".into(),
        "include/privseg.hpp".into(),
        "lib/pkgconfig/privseg.pc".into(),
        "lib/cmake/privseg/privsegConfig.cmake".into(),
        "lib/cmake/privseg/privsegConfigVersion.cmake".into(),
    ] {
        assert!(p.join(&f).exists(), "{f} was not installed");
    }
    let major: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap();
    let soversion = if major == 0 {
        format!("0.{}", env!("CARGO_PKG_VERSION_MINOR"))
    } else {
        major.to_string()
    };
    let soname = format!("libprivseg.so.{soversion}");
    let dynamic = ok(Command::new("readelf")
        .arg("-d")
        .arg(p.join("lib/libprivseg.so")));
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    assert!(
        dynamic.contains(&format!("Library soname: [{soname}]")),
        "{dynamic}"
    );
    assert_eq!(
        std::fs::read_link(p.join("lib").join(&soname)).unwrap(),
        Path::new(&format!("libprivseg.so.{v}"))
    );
    // The C API is exported from the shared library.
    let symbols = ok(Command::new("readelf")
        .args(["--dyn-syms", "-W"])
        .arg(p.join("lib/libprivseg.so")));
    assert!(String::from_utf8_lossy(&symbols.stdout).contains(" privseg_engine_new"));
}

#[test]
fn c_example_builds_with_pkg_config_and_runs() {
    if !tools(&["gcc", "pkg-config", "readelf"]) {
        return;
    }
    let flags = pkg_config(&["--cflags", "--libs"]);
    assert!(flags.contains(&"-lprivseg".to_string()), "{flags:?}");
    let exe = build(
        "gcc",
        "-std=c11",
        "examples/c/crm_plugin.c",
        "crm_plugin",
        &flags,
    );
    // Linked against the installed shared library, by its SONAME.
    let needed = ok(Command::new("readelf").arg("-d").arg(&exe));
    assert!(String::from_utf8_lossy(&needed.stdout).contains("Shared library: [libprivseg.so.0"));
    let out = run_example(&exe);
    assert!(out.contains("ids: c-1 c-6\n"), "{out}");
}

#[test]
fn cpp_example_builds_with_pkg_config_and_runs() {
    if !tools(&["g++", "pkg-config"]) {
        return;
    }
    let flags = pkg_config(&["--cflags", "--libs"]);
    let exe = build(
        "g++",
        "-std=c++17",
        "examples/cpp/crm_plugin.cpp",
        "crm_plugin_cpp",
        &flags,
    );
    run_example(&exe);
}

#[test]
fn c_example_links_statically_with_pkg_config() {
    if !tools(&["gcc", "pkg-config", "readelf"]) {
        return;
    }
    // The static archive by path, then what it needs from the system.
    let mut flags = pkg_config(&["--cflags"]);
    flags.push(prefix().join("lib/libprivseg.a").display().to_string());
    flags.extend(
        pkg_config(&["--static", "--libs-only-l"])
            .into_iter()
            .filter(|f| f != "-lprivseg"),
    );
    let exe = build(
        "gcc",
        "-std=c11",
        "examples/c/crm_plugin.c",
        "crm_plugin_static",
        &flags,
    );
    let dynamic = ok(Command::new("readelf").arg("-d").arg(&exe));
    assert!(!String::from_utf8_lossy(&dynamic.stdout).contains("libprivseg.so"));
    run_example(&exe);
}

#[test]
fn cmake_finds_the_package() {
    if !tools(&["cmake", "gcc", "g++"]) {
        return;
    }
    let dir = prefix().parent().unwrap().join("cmake-project");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = root().join("examples");
    std::fs::write(
        dir.join("CMakeLists.txt"),
        format!(
            "cmake_minimum_required(VERSION 3.16)\n\
             project(plugins C CXX)\n\
             find_package(privseg {} REQUIRED)\n\
             add_executable(crm_plugin {}/c/crm_plugin.c)\n\
             target_link_libraries(crm_plugin PRIVATE privseg::privseg)\n\
             add_executable(crm_plugin_cpp {}/cpp/crm_plugin.cpp)\n\
             set_property(TARGET crm_plugin_cpp PROPERTY CXX_STANDARD 17)\n\
             target_link_libraries(crm_plugin_cpp PRIVATE privseg::privseg_static)\n",
            env!("CARGO_PKG_VERSION"),
            src.display(),
            src.display()
        ),
    )
    .unwrap();
    let build = dir.join("build");
    ok(Command::new("cmake")
        .arg("-S")
        .arg(&dir)
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix().display())));
    ok(Command::new("cmake").arg("--build").arg(&build));
    run_example(&build.join("crm_plugin"));
    run_example(&build.join("crm_plugin_cpp"));
}
