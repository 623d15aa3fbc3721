//! Lays out the release daemon's code so what it runs at start and at idle
//! sits together.
//!
//! The kernel maps a program's code in blocks around each page it runs (64 KB
//! and more), and an idle daemon has run its config parser, its argument
//! parser and its runtime's start: spread over the whole binary, those few
//! hundred functions kept most of the code resident. `packaging/symbol-order.txt`
//! lists them (made by `scripts/symbol-order.sh`), and the linker puts them
//! first; the idle daemon's resident code falls from about 3 MB to about 1 MB
//! (docs/performance.md, "Code layout").
//!
//! Only where the linker is LLD, the default of Rust ≥ 1.90 on x86-64
//! Linux (glibc), and only for release builds. `DEPLOYD_SYMBOL_ORDER=0` turns
//! it off (e.g. with another linker set through `RUSTFLAGS`). A list made by
//! another compiler version matches few symbols and changes nothing: the
//! build is the same as without it.

use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    let list = Path::new("packaging/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", list.display());
    println!("cargo:rerun-if-env-changed=DEPLOYD_SYMBOL_ORDER");
    if !wanted() || !list.exists() {
        return;
    }
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let path = Path::new(&dir).join(list);
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        path.display()
    );
    // Names the list holds but this build lacks are expected (another
    // compiler, a changed dependency): not worth a warning per name.
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    // Relative relocations packed (DT_RELR): the loader reads a few KB at
    // start instead of 180 KB of `.rela.dyn`, which then stayed resident.
    // Needs glibc ≥ 2.36 where it runs; only used when the glibc it is built
    // against is that new (a binary runs on a glibc at least as new as the
    // one it was built on).
    if glibc_minor().is_some_and(|minor| minor >= 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The minor version of the build machine's glibc (`glibc 2.36` → 36).
fn glibc_minor() -> Option<u32> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    if parts.next()? != "2" {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Whether this build links with LLD and is a release build.
fn wanted() -> bool {
    let var = |k: &str| env::var(k).unwrap_or_default();
    if var("DEPLOYD_SYMBOL_ORDER") == "0" || var("PROFILE") != "release" {
        return false;
    }
    if var("CARGO_CFG_TARGET_ARCH") != "x86_64"
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
    {
        return false;
    }
    // A linker chosen by hand may not know the option.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if flags.contains("linker") || flags.contains("fuse-ld") {
        return false;
    }
    rustc_minor().is_some_and(|minor| minor >= 90)
}

/// The minor version of the compiler building this (`1.95.0` → 95).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-V").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    if parts.next()? != "1" {
        return None;
    }
    parts.next()?.parse().ok()
}
