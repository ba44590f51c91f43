//! The progress bar every fetch shows on stderr: bytes done, total, speed, ETA.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Builds a byte progress bar on stderr. `total` is `None` when the size is unknown.
pub(crate) fn byte_bar(message: &str, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
    } else {
        "{msg} {bytes} {binary_bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}
