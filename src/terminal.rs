//! The one terminal layer every command writes through: color on a terminal, none when the
//! output is piped, when `NO_COLOR` is set or with `--color never` (anstream, which clap already
//! brings, decides per stream).

/// When to color output (`--color`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (or `TERM=dumb`); `CLICOLOR_FORCE` forces it.
    #[default]
    Auto,
    /// Always, even when piped.
    Always,
    /// Never.
    Never,
}

/// Sets the choice for every stream of this process; call once, before the first output.
pub fn init(choice: ColorChoice) {
    let choice = match choice {
        ColorChoice::Auto => anstream::ColorChoice::Auto,
        ColorChoice::Always => anstream::ColorChoice::Always,
        ColorChoice::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
}

/// Standard output: styled text written here loses its styles where color is off.
pub fn stdout() -> anstream::Stdout {
    anstream::stdout()
}

/// Standard error, likewise.
pub fn stderr() -> anstream::Stderr {
    anstream::stderr()
}
