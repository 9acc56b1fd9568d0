//! The running bd-archive binary, to be carried on every disc so a disc can be read decades later
//! without finding the tool elsewhere. Only a statically linked binary is worth carrying.

use std::path::Path;

/// Why the binary is not carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotCarried {
    /// `--no-binary`.
    Disabled,
    /// Could not read the running executable.
    Unreadable(String),
    /// Dynamically linked: it would not run on another machine's libraries.
    Dynamic,
    /// Larger than the share of a disc we allow (5 %).
    TooLarge(u64),
}

impl std::fmt::Display for NotCarried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotCarried::Disabled => write!(f, "--no-binary given"),
            NotCarried::Unreadable(e) => write!(f, "cannot read the running binary: {e}"),
            NotCarried::Dynamic => write!(f, "this bd-archive is dynamically linked (build it with scripts/build-static.sh to carry it)"),
            NotCarried::TooLarge(n) => write!(f, "the binary ({n} bytes) would take more than 5 % of a disc"),
        }
    }
}

/// Whether an ELF executable is statically linked: it has no PT_INTERP program header.
pub(crate) fn is_static_elf(b: &[u8]) -> bool {
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])) as usize)
    };
    if b.len() < 64 || &b[0..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| {
        let off = phoff.saturating_add(i.saturating_mul(phentsize));
        matches!(b.get(off..off + 4), Some(t) if u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != 3)
    })
}

/// Loads the binary to carry on each disc of `capacity_bytes`, or says why not.
pub(crate) fn load(exe: &Path, capacity_bytes: u64, disabled: bool) -> Result<Vec<u8>, NotCarried> {
    if disabled {
        return Err(NotCarried::Disabled);
    }
    let bytes = std::fs::read(exe).map_err(|e| NotCarried::Unreadable(e.to_string()))?;
    if !is_static_elf(&bytes) {
        return Err(NotCarried::Dynamic);
    }
    if bytes.len() as u64 > capacity_bytes / 20 {
        return Err(NotCarried::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_dynamic_and_garbage() {
        // The test binary itself is dynamically linked in normal builds; /bin/sh is dynamic too.
        let sh = std::fs::read("/bin/sh").unwrap_or_default();
        if !sh.is_empty() {
            assert!(!is_static_elf(&sh));
        }
        assert!(!is_static_elf(b"not an elf"));
        assert!(!is_static_elf(&[0x7f, b'E', b'L', b'F', 2, 1, 0, 0]));
    }
}
