//! Build script: gives the shared library a SONAME (`libsessiond.so.0`, the ABI's major
//! version), so programs linked against it name the ABI they were built for and a
//! packager can install `libsessiond.so.0.1.0` with the usual links.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsessiond.so.{major}");
    }
    println!("cargo:rerun-if-changed=src/build.rs");
}
