//! The PowerSync SQLite core as a loadable extension: SQLite calls `sqlite3_powersync_init` when
//! the library is loaded. Built by `cargo xtask build-lib` with the `loadable` profile, which
//! aborts on panic as a `no_std` library must.

#![no_std]

pub use powersync_core::sqlite3_powersync_init;
use powersync_sqlite_nostd::SQLite3Allocator;

/// Every allocation goes through SQLite's allocator, as the core expects.
#[global_allocator]
static ALLOCATOR: SQLite3Allocator = SQLite3Allocator {};

unsafe extern "C" {
    fn abort() -> !;
}

/// The precompiled `core` refers to the unwinding personality routine. This library is built
/// with `panic = "abort"`, so nothing ever unwinds through it and the routine is never called.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort(3) never returns and needs no arguments.
    unsafe { abort() }
}
