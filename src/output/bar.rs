//! Progress bars: indicatif on stderr, drawn only on a terminal and not
//! under `--quiet`.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::Progress;

pub(crate) struct Bar {
    bar: ProgressBar,
    bytes: bool,
}

impl Bar {
    /// A bar that counts rows.
    pub(crate) fn new(quiet: bool) -> Bar {
        Bar::with_unit(quiet, false)
    }

    /// A bar that counts bytes.
    pub(crate) fn bytes(quiet: bool) -> Bar {
        Bar::with_unit(quiet, true)
    }

    fn with_unit(quiet: bool, bytes: bool) -> Bar {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bar {
            bar: ProgressBar::with_draw_target(None, target),
            bytes,
        }
    }
}

impl Progress for Bar {
    fn stage(&self, label: &str, total: u64) {
        let (counted, spinner) = if self.bytes {
            (
                "{bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
                "{spinner} {msg} {bytes}",
            )
        } else {
            (
                "{human_pos}/{human_len} rows ({per_sec}, {eta})",
                "{spinner} {msg}",
            )
        };
        let template = if total > 0 {
            format!("{{msg:>12}} [{{bar:40}}] {counted}")
        } else {
            spinner.to_string()
        };
        self.bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        self.bar.set_length(total);
        self.bar.set_position(0);
        if total == 0 {
            self.bar
                .enable_steady_tick(std::time::Duration::from_millis(120));
        }
        self.bar.set_message(label.to_string());
    }
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
