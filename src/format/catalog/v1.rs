//! Record bodies as format version 1 wrote them (FORMAT.md §8): an entry without its
//! [`ChangeStamp`](super::ChangeStamp), a catalog without its disc map. Readers decode a
//! version-1 record into these and convert; the missing fields become "unknown" (all-zero
//! stamps: `create --base` confirms such files by content hash; an empty disc map).

use serde::Deserialize;

use super::{bounded, ChainInfo, ChunkRecord, DataRef, DiscRecord, EntryKind, PartRecord};
use super::{Catalog, DiscIndex, Entry};
use crate::format::records::RecordBody;

/// [`Entry`] of format version 1: the same fields, without `stamp`.
#[derive(Deserialize)]
pub struct EntryV1 {
    #[serde(deserialize_with = "bounded::bytes::<_, 4096>")]
    path: Vec<u8>,
    kind: EntryKind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_sec: i64,
    mtime_nsec: u32,
    size: u64,
    #[serde(deserialize_with = "bounded::bytes::<_, 4096>")]
    link_target: Vec<u8>,
    rdev: u64,
    sha256: [u8; 32],
    data: DataRef,
}

/// [`Catalog`] of format version 1: without `disc_map`.
#[derive(Deserialize)]
pub struct CatalogV1 {
    chain: ChainInfo,
    tar_len: u64,
    discs: Vec<DiscRecord>,
    parts: Vec<PartRecord>,
    chunks: Vec<ChunkRecord>,
    entries: Vec<EntryV1>,
}

/// [`DiscIndex`] of format version 1: its entries without stamps.
#[derive(Deserialize)]
pub struct DiscIndexV1 {
    chain: ChainInfo,
    disc: DiscRecord,
    parts: Vec<PartRecord>,
    chunks: Vec<ChunkRecord>,
    entries: Vec<EntryV1>,
}

impl From<EntryV1> for Entry {
    fn from(e: EntryV1) -> Entry {
        Entry {
            path: e.path,
            kind: e.kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime_sec: e.mtime_sec,
            mtime_nsec: e.mtime_nsec,
            size: e.size,
            link_target: e.link_target,
            rdev: e.rdev,
            sha256: e.sha256,
            data: e.data,
            stamp: Default::default(),
        }
    }
}

impl From<CatalogV1> for Catalog {
    fn from(c: CatalogV1) -> Catalog {
        Catalog {
            chain: c.chain,
            tar_len: c.tar_len,
            discs: c.discs,
            parts: c.parts,
            chunks: c.chunks,
            entries: c.entries.into_iter().map(Entry::from).collect(),
            disc_map: Vec::new(),
        }
    }
}

impl From<DiscIndexV1> for DiscIndex {
    fn from(d: DiscIndexV1) -> DiscIndex {
        DiscIndex {
            chain: d.chain,
            disc: d.disc,
            parts: d.parts,
            chunks: d.chunks,
            entries: d.entries.into_iter().map(Entry::from).collect(),
        }
    }
}

impl RecordBody for Catalog {
    type V1 = CatalogV1;
}

impl RecordBody for DiscIndex {
    type V1 = DiscIndexV1;
}
