//! The shared library names its ABI (issue 19, point 9): a SONAME of `libsessiond.so.N`,
//! N the crate's major version, checked with readelf on the library cargo built beside the
//! binary under test.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_shared_library_has_a_soname() {
    // `cargo test` builds every crate type of the library, in one rustc run, into deps/
    // (the copy beside the binary is only refreshed by `cargo build`).
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_sessiond"));
    let lib = bin.with_file_name("deps").join("libsessiond.so");
    assert!(lib.exists(), "{} was not built", lib.display());
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&lib)
        .output()
        .expect("readelf (binutils) is installed with the C compiler");
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "Library soname: [libsessiond.so.{}]",
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert!(text.contains(&want), "{}: {text}", lib.display());
}
