//! Deserializers with natural limits for the variable-length fields of catalog and index
//! records (FORMAT.md §6): a hostile record is refused at the first field past its limit,
//! before the field is read whole, so no single field can cost more memory than its limit.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, Error, SeqAccess, Visitor};

/// A byte string (path, link target) of at most `MAX` bytes. Refused from the length prefix
/// when the decoder knows it (bincode does), else at byte `MAX + 1`.
pub fn bytes<'de, D: Deserializer<'de>, const MAX: usize>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_seq(BoundedBytes::<MAX>(PhantomData))
}

/// A UTF-8 string of at most `MAX` bytes (chain name, labels, version strings).
pub fn string<'de, D: Deserializer<'de>, const MAX: usize>(d: D) -> Result<String, D::Error> {
    let s: String = serde::Deserialize::deserialize(d)?;
    if s.len() > MAX {
        return Err(D::Error::custom(format!(
            "a string field of {} bytes (at most {MAX} allowed)",
            s.len()
        )));
    }
    Ok(s)
}

struct BoundedBytes<const MAX: usize>(PhantomData<()>);

impl<'de, const MAX: usize> Visitor<'de> for BoundedBytes<MAX> {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a byte string of at most {MAX} bytes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let too_long = || A::Error::custom(format!("a byte-string field longer than {MAX} bytes"));
        let hint = seq.size_hint().unwrap_or(0);
        if hint > MAX {
            return Err(too_long());
        }
        let mut v = Vec::with_capacity(hint);
        while let Some(b) = seq.next_element::<u8>()? {
            if v.len() == MAX {
                return Err(too_long());
            }
            v.push(b);
        }
        Ok(v)
    }

    fn visit_bytes<E: Error>(self, b: &[u8]) -> Result<Vec<u8>, E> {
        if b.len() > MAX {
            return Err(E::custom(format!(
                "a byte-string field longer than {MAX} bytes"
            )));
        }
        Ok(b.to_vec())
    }
}

/// A list of at most `MAX` items (the disc map). Refused from the count prefix when the
/// decoder knows it (bincode does), else at item `MAX + 1`; never reserves more than
/// `MAX` items ahead of those actually read.
pub fn list<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    d.deserialize_seq(BoundedList::<T, MAX>(PhantomData))
}

struct BoundedList<T, const MAX: usize>(PhantomData<T>);

impl<'de, T: serde::Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedList<T, MAX> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of at most {MAX} items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let too_long = || A::Error::custom(format!("a list longer than {MAX} items"));
        let hint = seq.size_hint().unwrap_or(0);
        if hint > MAX {
            return Err(too_long());
        }
        // At most 1 MiB reserved ahead of the items read (FORMAT §6): a count prefix alone
        // never costs memory.
        let mut v = Vec::with_capacity(hint.min((1 << 20) / std::mem::size_of::<T>().max(1)));
        while let Some(item) = seq.next_element::<T>()? {
            if v.len() == MAX {
                return Err(too_long());
            }
            v.push(item);
        }
        Ok(v)
    }
}
