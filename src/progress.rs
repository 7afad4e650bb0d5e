//! Progress for long operations: indicatif spinners on a terminal, plain lines elsewhere (CI
//! logs, pipes), nothing with `--quiet`. Warnings are printed in every mode but quiet.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Spinners (stderr is a terminal).
    Bars,
    /// One line per event.
    Lines,
    /// Nothing.
    Quiet,
}

/// The reporter handed to long operations.
#[derive(Debug, Clone)]
pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
}

/// One unit of work being reported (a build, a container start, a health wait).
#[derive(Debug)]
pub struct Task {
    mode: Mode,
    label: String,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    /// Chooses the mode from `--quiet` and whether stderr is a terminal.
    pub fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Progress::with_mode(mode)
    }

    /// A reporter in a given mode (tests use `Lines` or `Quiet`).
    pub fn with_mode(mode: Mode) -> Self {
        Progress {
            mode,
            multi: MultiProgress::new(),
        }
    }

    /// Starts a task.
    pub fn task(&self, label: impl Into<String>) -> Task {
        let label = label.into();
        let bar = match self.mode {
            Mode::Bars => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed}")
                        .expect("static template"),
                );
                bar.set_prefix(label.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            Mode::Lines => {
                eprintln!("… {label}");
                None
            }
            Mode::Quiet => None,
        };
        Task {
            mode: self.mode,
            label,
            bar,
            started: Instant::now(),
        }
    }

    /// An informational line.
    pub fn info(&self, message: impl AsRef<str>) {
        match self.mode {
            Mode::Bars => {
                let _ = self.multi.println(message.as_ref());
            }
            Mode::Lines => eprintln!("{}", message.as_ref()),
            Mode::Quiet => {}
        }
    }

    /// A warning: shown unless quiet.
    pub fn warn(&self, message: impl AsRef<str>) {
        match self.mode {
            Mode::Bars => {
                let _ = self.multi.println(format!("warning: {}", message.as_ref()));
            }
            Mode::Lines => eprintln!("warning: {}", message.as_ref()),
            Mode::Quiet => {}
        }
    }
}

impl Task {
    /// Updates the task's current step.
    pub fn step(&self, message: impl AsRef<str>) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.set_message(message.as_ref().to_string()),
            (None, Mode::Lines) => eprintln!("  {}: {}", self.label, message.as_ref()),
            _ => {}
        }
    }

    /// Ends the task successfully.
    pub fn done(self, message: impl AsRef<str>) {
        self.finish("✓", message.as_ref());
    }

    /// Ends the task with a failure.
    pub fn failed(self, message: impl AsRef<str>) {
        self.finish("✗", message.as_ref());
    }

    fn finish(self, mark: &str, message: &str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let line = format!("{mark} {} {message} ({elapsed:.1}s)", self.label);
        match (self.bar, self.mode) {
            (Some(bar), _) => bar.finish_with_message(format!("{message} ({elapsed:.1}s)")),
            (None, Mode::Lines) => eprintln!("{line}"),
            _ => {}
        }
    }
}
