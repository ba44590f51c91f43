//! Link settings of the `assisters` executable.

use std::process::Command;

/// Functions the app runs at start, listed by `scripts/startup-functions/generate`.
const STARTUP_FUNCTIONS: &str = "link/startup-functions.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={STARTUP_FUNCTIONS}");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if let Some(list) = startup_functions() {
        // The functions that start the app are otherwise spread over the whole
        // executable's code, and the kernel maps up to 64 KiB of code around each page
        // the start touches. That kept about 6 MiB of code resident for the app's whole
        // run, and about 1.8 MiB with these functions placed first and together.
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={list}");
        // Names from another compiler or dependency version are skipped silently.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    if packs_relative_relocations() {
        // Packed relative relocations (DT_RELR) shrink the relocation table that the
        // loader reads at every start from about 1 MB to about 12 KB. The pages it
        // read would otherwise stay in the app's resident memory for its whole run.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Returns the path of the startup function list for a release build linked by LLD.
/// Rust 1.90 and newer, as the Rust project ships it, link x86-64 Linux programs with
/// the LLD in the toolchain (`gcc-ld/ld.lld` in its sysroot). A toolchain without that
/// LLD, or a linker chosen in Cargo's config or the flags, gets `None` because GNU ld
/// rejects the option.
fn startup_functions() -> Option<String> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        || std::env::var_os("RUSTC_LINKER").is_some()
        || flags.contains("linker")
        || flags.contains("link-self-contained")
        || flags.contains("fuse-ld")
        || rustc_minor_version(&var("RUSTC")) < 90
        || !has_bundled_lld(&var("RUSTC"), &var("TARGET"))
    {
        return None;
    }
    let path = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join(STARTUP_FUNCTIONS);
    let list = path.to_str()?;
    // The linker option splits its value at commas.
    if list.contains(',') || !path.is_file() {
        return None;
    }
    Some(list.to_owned())
}

/// Returns whether the compiler's sysroot contains the LLD that it links with by
/// default. Distributions that build Rust themselves may leave it out and link with
/// the system's `cc` and GNU ld.
fn has_bundled_lld(rustc: &str, target: &str) -> bool {
    let Ok(output) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout);
    std::path::Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(target)
        .join("bin/gcc-ld/ld.lld")
        .is_file()
}

/// Returns the compiler's minor version, such as 95 for "rustc 1.95.0", or 0 when
/// unknown.
fn rustc_minor_version(rustc: &str) -> u32 {
    let Ok(output) = Command::new(rustc).arg("-V").output() else {
        return 0;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .nth(1)
        .and_then(|version| version.split('.').nth(1))
        .and_then(|minor| minor.parse().ok())
        .unwrap_or(0)
}

/// Returns whether the executable can use DT_RELR: a native Linux build against
/// glibc 2.36 or later, the first release whose loader reads it. The check queries
/// the build machine's glibc, so it is skipped when cross-compiling.
fn packs_relative_relocations() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("HOST") != var("TARGET")
    {
        return false;
    }
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    // The output reads like "glibc 2.36".
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(version) = text.split_whitespace().nth(1) else {
        return false;
    };
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (2, 36)
}
