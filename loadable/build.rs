//! The precompiled `core` calls `_Unwind_Resume`; name libgcc_s as a dependency so the library
//! also loads into hosts that do not link it themselves.

fn main() {
    println!("cargo:rustc-link-lib=dylib=gcc_s");
}
