//! Builds the static library, compiles the C and C++ programs of the
//! repository against it, runs them, checks their output, and runs them
//! under valgrind and, in a separate build, AddressSanitizer and UBSan.
//!
//! A tool that is not installed is skipped with a printed reason (CI installs
//! gcc, g++ and valgrind).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The native libraries the static library needs on Linux, as printed by
/// `cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs`.
const NATIVE_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

const WARNINGS: &[&str] = &["-Wall", "-Wextra", "-Wpedantic", "-Werror"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where this test builds: its own cargo target dir, so the cargo that runs
/// the test (and holds the lock of `target/`) is not waited for.
fn work_dir() -> PathBuf {
    root().join("target").join("ffi-tests")
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds `libprivseg.a` once per test run, returning its path.
fn static_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let target = work_dir().join("cargo");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(root())
            .env("CARGO_TARGET_DIR", &target)
            .args(["rustc", "--lib", "--crate-type", "staticlib", "--quiet"])
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "building the static library failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lib = target.join("debug").join("libprivseg.a");
        assert!(lib.exists(), "{} was not built", lib.display());
        lib
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Build {
    /// -O0, no sanitizer: for plain runs and valgrind.
    Plain,
    /// AddressSanitizer and UBSan, stopping at the first report.
    Sanitized,
}

/// Compiles one C or C++ source into an executable; `None` when the
/// compiler is not installed.
fn compile(source: &str, build: Build) -> Option<PathBuf> {
    // Tests run in parallel: each program is compiled once, by one of them.
    type Programs = HashMap<(String, Build), Option<PathBuf>>;
    static BUILT: Mutex<Option<Programs>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    built
        .entry((source.to_string(), build))
        .or_insert_with(|| compile_uncached(source, build))
        .clone()
}

fn compile_uncached(source: &str, build: Build) -> Option<PathBuf> {
    let cpp = source.ends_with(".cpp");
    let compiler = if cpp { "g++" } else { "gcc" };
    if !have(compiler) {
        println!("skipped: {compiler} is not installed");
        return None;
    }
    let lib = static_lib();
    let dir = work_dir().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let stem = Path::new(source).file_stem().unwrap().to_str().unwrap();
    let suffix = match build {
        Build::Plain => "plain",
        Build::Sanitized => "asan",
    };
    let exe = dir.join(format!("{stem}-{}-{suffix}", if cpp { "cpp" } else { "c" }));
    let mut cmd = Command::new(compiler);
    cmd.current_dir(root())
        .arg(if cpp { "-std=c++17" } else { "-std=c11" })
        .args(WARNINGS)
        .arg("-g")
        .arg("-Iinclude");
    match build {
        Build::Plain => {
            cmd.arg("-O0");
        }
        Build::Sanitized => {
            cmd.args([
                "-O1",
                "-fno-omit-frame-pointer",
                "-fsanitize=address,undefined",
                "-fno-sanitize-recover=all",
            ]);
        }
    }
    cmd.arg(source)
        .arg(lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "compiling {source} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(exe)
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(exe: &Path, args: &[&str]) -> Output {
    let out = Command::new(exe)
        .current_dir(root())
        .args(args)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        exe.display(),
        show(&out)
    );
    out
}

fn run_valgrind(exe: &Path, args: &[&str]) {
    if !have("valgrind") {
        println!("skipped: valgrind is not installed");
        return;
    }
    let out = Command::new("valgrind")
        .current_dir(root())
        .args([
            "-q",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(exe)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "valgrind found errors in {}: {}",
        exe.display(),
        show(&out)
    );
}

const POLICY: &str = "examples/c/policy.json";

/// What both plugins must print: the members, in order, the withheld count,
/// the pseudonymised export, the refusals of a segment and of an actor.
fn check_plugin_output(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let members: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("member "))
        .collect();
    assert_eq!(members, ["c-1", "c-6"], "{}", show(out));
    assert!(
        stdout.contains("members of lapsed_vip: 2\n"),
        "{}",
        show(out)
    );
    assert!(
        stdout.contains("refused: PRIVSEG_STATUS_SEGMENT_REFUSED, rule R2, line 1, column 46\n"),
        "{}",
        show(out)
    );
    assert!(
        stdout.contains("refused (R2): purpose marketing.email may not use attribute `allergy`")
    );
    // The caret sits under the attribute.
    assert!(
        stdout.contains("1 | segment \"allergic\" for marketing.email where allergy = true\n  |                                              ^^^^^^^\n"),
        "{}",
        show(out)
    );
    assert!(
        stdout.contains(r#""subject":"c-2""#) && stdout.contains(r#""reason":"consent_withdrawn""#)
    );
    assert!(
        stdout.contains("after erasing c-6: 1 member(s)\n"),
        "{}",
        show(out)
    );
    assert!(stdout.starts_with(&format!("privseg {}\n", env!("CARGO_PKG_VERSION"))));
    // Two members are fewer than the default k of 11.
    assert!(
        stdout.contains("count of lapsed_vip: fewer than 11\n"),
        "{}",
        show(out)
    );
    // The export: one line per member, a pseudonym instead of the id.
    let exported: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(r#"{"id":"v1:"#) && l.ends_with(r#"","country":"FR"}"#))
        .collect();
    assert_eq!(exported.len(), 2, "{}", show(out));
    assert!(
        exported
            .iter()
            .all(|l| l.len() == r#"{"id":"v1:","country":"FR"}"#.len() + 64)
    );
    assert!(!stdout.contains(r#""id":"c-"#), "{}", show(out));
    assert!(
        stdout.contains("report c-1: ") && stdout.contains(" bytes, in lapsed_vip\n"),
        "{}",
        show(out)
    );
    // An actor without member_ids is refused, by name and permission, but
    // may count.
    assert!(
        stdout.contains(
            "as ann: evaluate refused: PRIVSEG_STATUS_ACCESS_DENIED: access refused: actor \"ann\" lacks permission member_ids for purpose marketing.email\n"
        ),
        "{}",
        show(out)
    );
    assert!(
        stdout.contains("as ann: count of lapsed_vip: fewer than 11\n"),
        "{}",
        show(out)
    );
    let entries: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("audit log: "))
        .and_then(|l| l.strip_suffix(" entries"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no audit log line: {}", show(out)));
    assert!(entries > 10, "{}", show(out));
}

/// The C and C++ plugins give the same pseudonyms: same secret, recipient,
/// purpose and key version.
fn exported_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(r#"{"id":"v1:"#))
        .map(String::from)
        .collect()
}

#[test]
fn c_plugin_runs_and_prints_the_members_and_the_refusal() {
    let Some(exe) = compile("examples/c/crm_plugin.c", Build::Plain) else {
        return;
    };
    let out = run(&exe, &[POLICY]);
    check_plugin_output(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ids: c-1 c-6\n"));
}

#[test]
fn cpp_plugin_runs_and_prints_the_members_and_the_refusal() {
    let Some(exe) = compile("examples/cpp/crm_plugin.cpp", Build::Plain) else {
        return;
    };
    let out = run(&exe, &[POLICY]);
    check_plugin_output(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("erasing c-6 again: PRIVSEG_STATUS_UNKNOWN_SUBJECT\n"));
    assert!(
        stdout.contains(
            "signal sections: 2 6; purposes consented: 1 2 3 4; usp opt-out of sale: Y\n"
        ),
        "{}",
        show(&out)
    );
    assert!(
        stdout.contains("usp vendors: PRIVSEG_STATUS_SIGNAL_ABSENT\n"),
        "{}",
        show(&out)
    );
    if let Some(c) = compile("examples/c/crm_plugin.c", Build::Plain) {
        assert_eq!(exported_lines(&run(&c, &[POLICY])), exported_lines(&out));
    }
}

#[test]
fn c_bad_input_gives_statuses_not_crashes() {
    let Some(exe) = compile("tests/c/bad_input.c", Build::Plain) else {
        return;
    };
    let out = run(&exe, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 0 not met"), "{}", show(&out));
    // The program makes the library panic on purpose: nothing may reach
    // the host's stderr.
    assert!(out.stderr.is_empty(), "{}", show(&out));
}

#[test]
fn c_signal_handles_give_their_fields() {
    let Some(exe) = compile("tests/c/signals.c", Build::Plain) else {
        return;
    };
    let out = run(&exe, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 0 not met"), "{}", show(&out));
    assert!(out.stderr.is_empty(), "{}", show(&out));
}

#[test]
fn c_deepest_segment_compiles_on_a_64_kib_thread() {
    let Some(exe) = compile("tests/c/small_stack.c", Build::Plain) else {
        return;
    };
    let out = run(&exe, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 0 not met"), "{}", show(&out));
}

#[test]
fn c_durable_engine_is_created_closed_and_reopened() {
    let Some(exe) = compile("tests/c/store.c", Build::Plain) else {
        return;
    };
    let out = run(&exe, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 0 not met"), "{}", show(&out));
}

#[test]
fn programs_are_clean_under_valgrind() {
    for (source, args) in [
        ("examples/c/crm_plugin.c", &[POLICY][..]),
        ("examples/cpp/crm_plugin.cpp", &[POLICY][..]),
        ("tests/c/bad_input.c", &[][..]),
        ("tests/c/signals.c", &[][..]),
        ("tests/c/small_stack.c", &[][..]),
        ("tests/c/store.c", &[][..]),
    ] {
        let Some(exe) = compile(source, Build::Plain) else {
            continue;
        };
        run_valgrind(&exe, args);
    }
}

#[test]
fn programs_are_clean_under_asan_and_ubsan() {
    for (source, args) in [
        ("examples/c/crm_plugin.c", &[POLICY][..]),
        ("examples/cpp/crm_plugin.cpp", &[POLICY][..]),
        ("tests/c/bad_input.c", &[][..]),
        ("tests/c/signals.c", &[][..]),
        ("tests/c/small_stack.c", &[][..]),
        ("tests/c/store.c", &[][..]),
    ] {
        let Some(exe) = compile(source, Build::Sanitized) else {
            continue;
        };
        let out = run(&exe, args);
        assert!(out.stderr.is_empty(), "sanitizer output: {}", show(&out));
    }
}
