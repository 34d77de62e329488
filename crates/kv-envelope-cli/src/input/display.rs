//! Describing stored data in messages without letting it speak: safe names, JSON kinds.

use serde_json::Value;

/// A name read from stored data (a type name in an envelope or in metadata), made safe to
/// print: control characters escaped, so a hostile name cannot drive the terminal, and cut at
/// 64 characters.
pub(crate) fn shown(name: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = name
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// The kind of a JSON value, for messages that must not quote the value itself.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_names_cannot_drive_the_terminal() {
        assert_eq!(shown("session"), "session");
        assert_eq!(shown("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 65);
    }
}
