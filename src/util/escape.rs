//! Paths rendered for one-line messages and report files.

/// Renders path bytes for one-line messages: valid UTF-8 is kept, every other byte and every control
/// character is shown as `\xNN`, and `\` itself as `\\`, so the output is unambiguous and reversible
/// and a hostile name cannot inject newlines or terminal escapes into logs.
pub fn escape_path(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                s.push_str("\\\\");
            } else if c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    s.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                s.push(c);
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

/// The last gate before a terminal: every control character of `msg` except newline and tab
/// is shown as `\xNN` (so an escape sequence from a disc — a chain name, a label, a file name —
/// can never set the title, clear the screen or move the cursor), everything else is kept.
/// Every message the CLI prints goes through it; JSON output is escaped by serde instead.
pub fn terminal_text(msg: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !msg.chars().any(bad) {
        return std::borrow::Cow::Borrowed(msg);
    }
    let mut s = String::with_capacity(msg.len() + 8);
    for c in msg.chars() {
        if bad(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                s.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            s.push(c);
        }
    }
    std::borrow::Cow::Owned(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_neutralises_escape_sequences_only() {
        assert_eq!(terminal_text("a\tb\nc \\x"), "a\tb\nc \\x");
        assert_eq!(
            terminal_text("evil\x1b]0;pwned\x07\x1b[2J\u{9b}"),
            "evil\\x1b]0;pwned\\x07\\x1b[2J\\xc2\\x9b"
        );
    }
}
