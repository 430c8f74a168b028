//! Progress bars on stderr for long commands (`simulate`, `replay`). A bar
//! is drawn only for a person: when stderr is a terminal and the command's
//! output is not `--json` for a program. Otherwise it is hidden, so logs and
//! pipes stay clean and a hidden bar costs next to nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar for `total` items of `what` ("replayed", "customers"), redrawn at
/// most ten times a second.
pub fn bar(total: u64, what: &str, json: bool) -> ProgressBar {
    let target = if json || !std::io::stderr().is_terminal() { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr_with_hz(10) };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    // The template is a constant; should it ever fail to parse, the default style still shows progress.
    if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} ({per_sec}, about {eta} left)") {
        bar.set_style(style.progress_chars("#>."));
    }
    bar.set_message(what.to_owned());
    bar
}
