"""Checks that no resolved dependency declares a newer rust-version than this crate.

Only one toolchain can be installed on the CI machine, so the declared minimum is checked
two ways: clippy's incompatible_msrv lint (run by .ci/run with -D warnings) refuses any std
API newer than Cargo.toml's rust-version, and this script refuses a dependency that needs
a newer Rust. Reads `cargo metadata --format-version 1` on stdin.
"""
import json
import sys


def version(v):
    return tuple(int(x) for x in v.split("."))


meta = json.load(sys.stdin)
ours = next(p for p in meta["packages"] if p["id"] in meta["workspace_members"])
need = version(ours["rust_version"])
resolved = {n["id"] for n in meta["resolve"]["nodes"]}
newer = [
    "{} {} needs {}".format(p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p["id"] in resolved and p.get("rust_version") and version(p["rust_version"]) > need
]
if newer:
    sys.exit("dependencies newer than rust-version {}:\n{}".format(ours["rust_version"], "\n".join(newer)))
print("rust-version {}: {} packages resolved, none needs a newer Rust".format(ours["rust_version"], len(resolved)))
