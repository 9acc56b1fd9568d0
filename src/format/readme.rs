//! The README.txt placed on every disc: what the disc is and how to restore it with and without
//! bd-archive, so the disc explains itself decades from now.

use crate::format::catalog::ChainInfo;

/// README text for disc `disc` of the generation described by `chain`.
pub(crate) fn disc_readme(chain: &ChainInfo, disc: u32) -> String {
    let g = chain.generation;
    let name = &chain.name;
    let id: String = chain.chain_id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "BD-ARCHIVE | {name} | Gen {g} | Disc {disc} | created {created} (unix time) | FEC {r}% | {comp}\n\
\n\
This disc is part of the bd-archive chain '{name}' (chain id {id}), generation {g}, disc {disc}.\n\
The last disc of a generation also holds its catalog ({name}-gen{g}/{name}-gen{g}.catalog).\n\
FORMAT.md on this disc specifies every byte; the program bd-archive reads and repairs it.\n\
\n\
RESTORE WITH bd-archive (repairs damage with the disc's Reed-Solomon data, checks every file):\n\
    bd-archive extract -o /target  /dev/sr0            (insert the discs one after another)\n\
    bd-archive extract -o /target  {name}-gen{g:04}-disc0001.iso {name}-gen{g:04}-disc0002.iso ...\n\
    bd-archive extract -o /target  FOLDER       (a folder of images of any generations)\n\
VERIFY:\n\
    bd-archive verify /dev/sr0        exit 0 = intact, 1 = damaged but repairable, 2 = not repairable\n\
\n\
RESTORE WITHOUT bd-archive (intact discs only), using only zstd and tar:\n\
    copy the folder {name}-gen{g}/ from every disc of generation {g} into one directory, then\n\
    cat {name}-gen{g}.*.tar.zst | zstd -d | tar -xf -\n\
  The files {name}-gen{g}.NNNN.tar.zst, concatenated in name order, are one zstd stream of one\n\
  PAX tar archive. This fallback cannot repair damage (the .fec file is only used by bd-archive),\n\
  and for generations after the first it restores only what changed in that generation: apply\n\
  generations in order; deletions and renames recorded in the catalog are not applied by tar.\n",
        created = chain.created_unix,
        r = chain.redundancy_pct,
        comp = chain.compression,
    )
}
