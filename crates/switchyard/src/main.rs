//! `switchyard`: the command-line entry point. Parses arguments, runs one
//! command, prints errors as one line each and exits with a fixed code.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;

/// jemalloc, not glibc's malloc: on the durable path glibc's malloc and
/// free (`_int_malloc`, `_int_free`, `malloc_consolidate`) were ~20% of a
/// `serve` process's CPU, and jemalloc cut serve's CPU per message by
/// 10-20% (BENCHMARKS, "eleventh session"). Rust's allocations only:
/// SQLite's own go on through the C library.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // `switchyard ... | head` closes stdout early; Rust ignores SIGPIPE, so
    // println! panics. A closed reader is not an error worth a backtrace.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
