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
