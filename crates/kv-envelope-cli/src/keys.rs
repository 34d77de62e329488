//! The key ring of `inspect`, `migrate` and `encode`: from the process environment
//! (`--keys-env PREFIX`) or from a `.dev.vars`-style file (`--keys-file FILE --keys-prefix
//! PREFIX`), never from the command line. Every message names a variable, a file or a line
//! number, never a value.

use std::{collections::HashMap, path::PathBuf};

use super::input::Fail;
use kv_envelope::KeyRing;

/// Where the key ring comes from. The ring is `<PREFIX>_KEYS` (key ids, primary first:
/// `k2,k1`) and one `<PREFIX>_KEY_<id>` per id (base64 of 32 bytes), as a Worker reads it
/// (`KeyRing::from_env`).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct KeyArgs {
    /// Open (and seal) with the key ring in the process environment: `<PREFIX>_KEYS` lists the
    /// key ids, primary first; `<PREFIX>_KEY_<id>` holds each key (base64 of 32 bytes).
    #[arg(long, value_name = "PREFIX", conflicts_with_all = ["keys_file", "keys_prefix"])]
    pub keys_env: Option<String>,
    /// Read the key ring from this file of `NAME=VALUE` lines (`.dev.vars` style: `#`
    /// comments, optional quotes, optional `export`) instead of the environment.
    #[arg(long, value_name = "FILE", requires = "keys_prefix")]
    pub keys_file: Option<PathBuf>,
    /// The variable prefix of the ring in `--keys-file`.
    #[arg(long, value_name = "PREFIX", requires = "keys_file")]
    pub keys_prefix: Option<String>,
}

impl KeyArgs {
    /// The ring, `None` when no option asks for one. Reads the environment through `env`.
    /// It reads clear values too (`requiring_sealed(false)`): the tool inspects whatever is
    /// stored and seals clear values (`migrate --seal`), where an app's ring refuses them.
    pub(crate) fn load(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<KeyRing>, Fail> {
        Ok(self
            .load_strict(env)?
            .map(|ring| ring.requiring_sealed(false)))
    }

    fn load_strict(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<KeyRing>, Fail> {
        if let Some(prefix) = &self.keys_env {
            return KeyRing::from_lookup(prefix, env)
                .map(Some)
                .map_err(|e| Fail(format!("key ring (--keys-env {prefix}): {e}")));
        }
        let (Some(path), Some(prefix)) = (&self.keys_file, &self.keys_prefix) else {
            return Ok(None);
        };
        let text = std::fs::read(path)
            .map_err(|e| Fail::io(format!("cannot read {}", path.display()), &e))?;
        let vars = parse_vars(&text).map_err(|m| Fail(format!("{}: {m}", path.display())))?;
        KeyRing::from_lookup(prefix, |name| vars.get(name).cloned())
            .map(Some)
            .map_err(|e| Fail(format!("key ring ({}): {e}", path.display())))
    }
}

/// A `.dev.vars` / dotenv file: `NAME=VALUE` per line, blank lines and `#` comments skipped,
/// an optional `export ` before the name, the value trimmed and optionally in single or double
/// quotes; after an unquoted value, ` #` starts a comment. A later line wins. Errors give the
/// line number only: the line may hold a secret.
pub(crate) fn parse_vars(text: &[u8]) -> Result<HashMap<String, String>, String> {
    let text = std::str::from_utf8(text).map_err(|e| {
        let line = text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        format!("line {line} is not UTF-8")
    })?;
    let mut vars = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("line {n} is not NAME=VALUE"));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        {
            return Err(format!("line {n}: the name is not a variable name"));
        }
        let value = value.trim();
        let value = match value.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => {
                let rest = &value[1..];
                let end = rest
                    .find(char::from(q))
                    .ok_or_else(|| format!("line {n} ({name}): the quote is not closed"))?;
                let after = rest[end + 1..].trim_start();
                if !(after.is_empty() || after.starts_with('#')) {
                    return Err(format!("line {n} ({name}): text after the closing quote"));
                }
                rest[..end].to_string()
            }
            _ => match value.find(" #") {
                Some(at) => value[..at].trim_end().to_string(),
                None => value.to_string(),
            },
        };
        vars.insert(name.to_string(), value);
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::parse_vars;

    #[test]
    fn dev_vars_lines() {
        let vars = parse_vars(
            b"# keys\n\nA_KEYS=\"k2,k1\"\nexport A_KEY_k2 = 'abc=' # comment\nA_KEY_k1=xyz= # c\nB=\n",
        )
        .unwrap();
        assert_eq!(vars["A_KEYS"], "k2,k1");
        assert_eq!(vars["A_KEY_k2"], "abc=");
        assert_eq!(vars["A_KEY_k1"], "xyz=");
        assert_eq!(vars["B"], "");
    }

    #[test]
    fn errors_name_the_line_not_the_value() {
        let e = parse_vars(b"A=1\nsecretvalue\n").unwrap_err();
        assert_eq!(e, "line 2 is not NAME=VALUE");
        let e = parse_vars(b"A_KEY_k1=\"secretvalue\n").unwrap_err();
        assert!(!e.contains("secretvalue"), "{e}");
        assert!(e.contains("A_KEY_k1"), "{e}");
    }
}
