//! Escaping per output language: every value a template writes passes through the filter of the
//! language it lands in, so a value that slipped past validation still renders as data.
//!
//! | filter       | where                                    | how                                                  |
//! |--------------|------------------------------------------|------------------------------------------------------|
//! | `yaml`       | YAML keys; `prometheus.yml`, `colima.yaml` | plain when provably a string, else double-quoted   |
//! | `compose`    | values in `docker-compose.yml`           | `yaml`, then compose's `$` interpolation as `$$`     |
//! | `compose_quoted` | exec-form words in `docker-compose.yml` | `compose`, always double-quoted                  |
//! | `k8s_expanded` | env values and args in `k8s/*.yaml`   | `yaml`, then Kubernetes's `$(VAR)` expansion as `$$` |
//! | `sh`         | the provisioning script (POSIX `sh`)     | one single-quoted word, `'` as `'\''`                |
//! | `bash`       | `colima-setup.sh`                        | `sh`, or `$'…'` with `\xHH` for control characters  |
//! | `docker_arg` | Dockerfile `ARG` defaults                | double-quoted; `\`, `"`, `$` escaped; no line break  |
//! | `comment`    | `#` comment lines in every file          | line breaks and control characters as escapes        |
//!
//! Values the model holds as numbers, enums or addresses (ports, limits, roles) are written as
//! they are: their text cannot contain a quote, a line break or a `$`.

use minijinja::Environment;

/// Registers every filter of this module in `env` (the one place templates get them from).
pub fn register(env: &mut Environment<'_>) {
    env.add_filter("yaml", |value: String| yaml(&value));
    env.add_filter("compose", |value: String| compose(&value));
    env.add_filter("compose_quoted", |value: String| compose_quoted(&value));
    env.add_filter("k8s_expanded", |value: String| k8s_expanded(&value));
    env.add_filter("sh", |value: String| sh(&value));
    env.add_filter("bash", |value: String| bash(&value));
    env.add_filter("docker_arg", |value: String| docker_arg(&value));
    env.add_filter("comment", |value: String| comment(&value));
}

/// Words YAML 1.1 (which compose's and Prometheus's parsers still honour in places) reads as
/// booleans or null when plain.
const YAML_SPECIAL_WORDS: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
];

/// True when `text` is a YAML plain scalar that every YAML 1.1 or 1.2 parser reads back as this
/// same string: starts with a letter (no indicator, no number, no date), then only letters,
/// digits, `.`, `_`, `-` and `/` (no `:`, `#`, space, flow or quote characters), and not a
/// boolean or null word.
fn is_plain_yaml_string(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        && !YAML_SPECIAL_WORDS.contains(&text.to_ascii_lowercase().as_str())
}

/// A YAML scalar that reads back as exactly `text`: plain when that is unambiguous, otherwise a
/// double-quoted scalar with `\`, `"`, line breaks and every non-printable character escaped.
pub fn yaml(text: &str) -> String {
    if is_plain_yaml_string(text) {
        return text.to_string();
    }
    yaml_quoted(text)
}

/// A double-quoted YAML scalar that reads back as exactly `text`, whatever it holds (for the
/// words of an exec-form command, which read best quoted alike).
pub fn yaml_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Printable per YAML 1.2 §5.1, minus the characters YAML 1.1 treats as line breaks
            // (NEL, LS, PS) and the byte-order mark.
            ' '..='~' => out.push(c),
            '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..
                if !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}') =>
            {
                out.push(c)
            }
            c if (c as u32) <= 0xFF => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A scalar for `docker-compose.yml`: [`yaml`], then every `$` doubled, because compose
/// interpolates `$VAR`/`${VAR}` in every value, quoted or not, and reads `$$` as one `$`.
pub fn compose(text: &str) -> String {
    yaml(text).replace('$', "$$")
}

/// [`yaml_quoted`] for `docker-compose.yml`: every `$` doubled, as in [`compose`].
pub fn compose_quoted(text: &str) -> String {
    yaml_quoted(text).replace('$', "$$")
}

/// A scalar for a Kubernetes container's `env[].value`, `command` or `args`: [`yaml`], then
/// every `$` doubled, because the kubelet expands `$(VAR)` there and reads `$$` as one `$`.
pub fn k8s_expanded(text: &str) -> String {
    yaml(text).replace('$', "$$")
}

/// One shell word that the shell reads back as exactly `text`, with no expansion of any kind:
/// single-quoted, each `'` closed, escaped and reopened (`'\''`). Always quoted, so a reader (and
/// a test) can tell at a glance which words came from the cluster file.
pub fn sh(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// One bash word for `text`: [`sh`], or, when `text` holds a control character, bash's `$'…'`
/// with every byte outside printable ASCII (and `'`, `\`) as `\xHH`, so no raw line break or
/// carriage return reaches the rendered file (where newline normalization would change it).
pub fn bash(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return sh(text);
    }
    let mut out = String::from("$'");
    for byte in text.bytes() {
        match byte {
            b' '..=b'~' if byte != b'\'' && byte != b'\\' => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out.push('\'');
    out
}

/// The default value of a Dockerfile `ARG`: double-quoted with `\`, `"` and `$` escaped (no
/// variable substitution), and line breaks and control characters replaced by `\` and a letter,
/// because a raw line break would end the instruction and start a new one.
pub fn docker_arg(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for the rest of a `#` comment line: line breaks (including YAML 1.1's NEL, LS and PS) and
/// other control characters written as Rust-style escapes, so the comment cannot end early.
pub fn comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}') {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keeps_simple_names_plain_and_quotes_the_rest() {
        for plain in [
            "node1",
            "erlmcp-net",
            "json-file",
            "docker.io/prom/prometheus",
        ] {
            assert_eq!(yaml(plain), plain);
        }
        let cases = [
            ("0.1.0", r#""0.1.0""#),
            ("yes", r#""yes""#),
            ("Off", r#""Off""#),
            ("", r#""""#),
            ("a: b", r#""a: b""#),
            ("x\nprivileged: true", r#""x\nprivileged: true""#),
            ("#x", r##""#x""##),
            ("-x", r#""-x""#),
            ("*x", r#""*x""#),
            ("&x", r#""&x""#),
            ("!x", r#""!x""#),
            ("%x", r#""%x""#),
            ("@x", r#""@x""#),
            ("`x", r#""`x""#),
            ("{a: 1}", r#""{a: 1}""#),
            ("[a]", r#""[a]""#),
            ("q\"\\", r#""q\"\\""#),
            ("\u{85}\u{2028}\u{7}", r#""\x85\u2028\x07""#),
            ("é", "\"é\""),
        ];
        for (text, quoted) in cases {
            assert_eq!(yaml(text), quoted, "{text:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any string, as a YAML value and as a YAML key, reads back as itself.
        #[test]
        fn yaml_round_trips_any_string(text in proptest::prelude::any::<String>()) {
            let document = format!("{}: {}\n", yaml(&text), yaml(&text));
            let parsed: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(&document).unwrap();
            proptest::prop_assert_eq!(parsed.len(), 1);
            let (key, value) = parsed.iter().next().unwrap();
            proptest::prop_assert_eq!(key.as_str(), Some(text.as_str()));
            proptest::prop_assert_eq!(value.as_str(), Some(text.as_str()));
        }

        /// Any string's `docker_arg` is one line.
        #[test]
        fn docker_arg_is_one_line(text in proptest::prelude::any::<String>()) {
            let arg = docker_arg(&text);
            proptest::prop_assert!(!arg.contains(['\n', '\r']));
        }
    }

    #[test]
    fn compose_quoted_quotes_even_plain_words() {
        assert_eq!(compose_quoted("CMD"), "\"CMD\"");
        assert_eq!(compose_quoted("a$b\"c"), "\"a$$b\\\"c\"");
    }

    #[test]
    fn compose_doubles_every_dollar() {
        assert_eq!(compose("${HOME}"), r#""$${HOME}""#);
        assert_eq!(compose("a$b"), r#""a$$b""#);
    }

    #[test]
    fn k8s_expanded_doubles_every_dollar() {
        assert_eq!(k8s_expanded("$(HOME)"), r#""$$(HOME)""#);
        assert_eq!(k8s_expanded("plain"), "plain");
    }

    #[test]
    fn sh_is_one_single_quoted_word() {
        assert_eq!(sh("erlmcp"), "'erlmcp'");
        assert_eq!(sh("$(touch x)"), "'$(touch x)'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh(""), "''");
    }

    #[test]
    fn bash_writes_control_characters_as_hex_escapes() {
        assert_eq!(bash("plain"), "'plain'");
        assert_eq!(bash("a\nb'c\\\r"), r"$'a\x0ab\x27c\x5c\x0d'");
        assert_eq!(bash("\u{85}"), r"$'\xc2\x85'");
    }

    #[test]
    fn docker_arg_has_no_line_break_and_no_substitution() {
        assert_eq!(
            docker_arg("rust:1\nRUN touch /x"),
            r#""rust:1\u000aRUN touch /x""#
        );
        assert_eq!(docker_arg(r#"a"$b\"#), r#""a\"\$b\\""#);
    }

    #[test]
    fn comment_cannot_end_the_line() {
        assert_eq!(comment("a\nb\r\u{2028}c"), r"a\nb\r\u{2028}c");
        assert_eq!(comment("clusters/x.toml"), "clusters/x.toml");
    }
}
