//! Progress on stderr for work that takes longer than a second (`indicatif`, the crate the
//! training bar already uses): hidden with `--quiet` and whenever stderr is not a terminal,
//! so pipes, logs and tests see none of it.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress is drawn: not `quiet`, and stderr is a terminal.
pub(crate) fn visible(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A counting bar of `len` steps labelled `what`, with elapsed time and an estimate of what
/// is left; hidden unless [`visible`].
pub(crate) fn bar(len: u64, what: impl Into<String>, quiet: bool) -> ProgressBar {
    if !visible(quiet) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {elapsed_precise}<{eta_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(what.into());
    pb
}

/// A spinner labelled `what` with the elapsed time, for one long call whose steps cannot be
/// counted from outside (the engine's parallel passes draw ε per chunk of rows, so splitting
/// a sampled pass to count it would change its numbers); hidden unless [`visible`].
pub(crate) fn spinner(what: impl Into<String>, quiet: bool) -> ProgressBar {
    if !visible(quiet) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(what.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Runs `f` under a [`spinner`], cleared when `f` returns.
pub(crate) fn with_spinner<T>(what: impl Into<String>, quiet: bool, f: impl FnOnce() -> T) -> T {
    let pb = spinner(what, quiet);
    let r = f();
    pb.finish_and_clear();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hides_and_a_terminal_is_needed() {
        assert!(!visible(true));
        assert!(bar(10, "x", true).is_hidden());
        assert!(spinner("x", true).is_hidden());
        let term = std::io::stderr().is_terminal();
        assert_eq!(visible(false), term);
        assert_eq!(bar(10, "x", false).is_hidden(), !term);
        assert_eq!(with_spinner("x", true, || 7), 7);
    }
}
