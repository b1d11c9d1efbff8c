//! Tells the tests which outside tools this machine has, so that a test needing a
//! missing one is reported as ignored, with the tool and how to get it, rather than
//! passing silently or failing obscurely.
//!
//! cfgs: `spillway_has_terraform` (terraform on PATH), `spillway_has_chromium` (a
//! headless browser for the live page's test), `spillway_is_root` (tests may mount a
//! tmpfs). Rerun when PATH changes.

use std::process::Command;

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn main() {
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(spillway_has_terraform)");
    println!("cargo::rustc-check-cfg=cfg(spillway_is_root)");
    println!("cargo::rustc-check-cfg=cfg(spillway_has_chromium)");
    if ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .any(|p| on_path(p))
    {
        println!("cargo:rustc-cfg=spillway_has_chromium");
    }
    if on_path("terraform") {
        println!("cargo:rustc-cfg=spillway_has_terraform");
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if uid == "0" {
        println!("cargo:rustc-cfg=spillway_is_root");
    }
}
