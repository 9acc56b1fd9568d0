//! File names of the images `create` writes to `OUT/images`: one function makes them, one parses
//! them, so `create`, `--resume`, `burn -i` and the readers agree.
//!
//! `<NAME>-gen<GGGG>-disc<NNNN>.iso` for data discs, `<NAME>-gen<GGGG>-parity<NNNN>.iso` for
//! parity discs. The names are unique within a chain (a shelf folder holding several generations
//! keeps every image) and sort in burn order: by generation (zero-padded to 4 digits), data
//! before parity ("disc" < "parity"), then by number. Images of bd-archive before this naming
//! were `disc_NNNN.iso`; they are still recognised.

use std::path::Path;

/// What an image holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImageKind {
    /// A data disc of a generation (numbered from 1).
    Data,
    /// A parity disc of a generation (numbered from 1; burned after its data discs).
    Parity,
}

/// What an image's file name says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// The chain name; `None` for an old `disc_NNNN.iso` name, which does not carry it.
    pub chain: Option<String>,
    /// The generation; `None` for an old `disc_NNNN.iso` name.
    pub generation: Option<u32>,
    /// Data or parity disc.
    pub kind: ImageKind,
    /// Disc number within the generation (data discs) or parity number (parity discs), ≥ 1.
    pub number: u32,
}

impl ImageName {
    /// The order images are burned in: by generation, data before parity, then by number.
    /// Old `disc_NNNN.iso` names sort as data discs of generation 0.
    pub fn burn_order(&self) -> (u32, ImageKind, u32) {
        (self.generation.unwrap_or(0), self.kind, self.number)
    }
}

/// The file name of an image: `<chain>-gen<GGGG>-disc<NNNN>.iso` or `…-parity<NNNN>.iso`.
pub fn image_file_name(chain: &str, generation: u32, kind: ImageKind, number: u32) -> String {
    let what = match kind {
        ImageKind::Data => "disc",
        ImageKind::Parity => "parity",
    };
    format!("{chain}-gen{generation:04}-{what}{number:04}.iso")
}

/// The name an image of bd-archive before generation-qualified names had: `disc_NNNN.iso`.
pub fn legacy_image_file_name(number: u32) -> String {
    format!("disc_{number:04}.iso")
}

/// Parses an image file name written by [`image_file_name`] or an old `disc_NNNN.iso`; `None`
/// for any other name (including the `.….iso.partial` files of an unfinished image).
pub fn parse_image_file_name(file_name: &str) -> Option<ImageName> {
    let stem = file_name.strip_suffix(".iso")?;
    if let Some(n) = stem.strip_prefix("disc_") {
        return Some(ImageName {
            chain: None,
            generation: None,
            kind: ImageKind::Data,
            number: digits(n)?,
        });
    }
    // Parsed from the end: the chain name may itself contain "-gen" or "-disc".
    let (rest, kind, number) = ["disc", "parity"]
        .iter()
        .zip([ImageKind::Data, ImageKind::Parity])
        .find_map(|(word, kind)| {
            let (rest, n) = stem.rsplit_once(&format!("-{word}"))?;
            Some((rest, kind, digits(n)?))
        })?;
    let (chain, g) = rest.rsplit_once("-gen")?;
    if chain.is_empty() {
        return None;
    }
    Some(ImageName {
        chain: Some(chain.to_string()),
        generation: Some(digits(g)?),
        kind,
        number,
    })
}

/// The parsed name of the file at `path` (see [`parse_image_file_name`]).
pub fn parse_image_path(path: &Path) -> Option<ImageName> {
    parse_image_file_name(path.file_name()?.to_str()?)
}

/// At least 4 ASCII digits (zero-padded), a number ≥ 1.
fn digits(s: &str) -> Option<u32> {
    if s.len() < 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_in_burn_order() {
        let names = [
            image_file_name("photos", 2, ImageKind::Parity, 1),
            image_file_name("photos", 1, ImageKind::Data, 2),
            image_file_name("photos", 2, ImageKind::Data, 10),
            image_file_name("photos", 1, ImageKind::Parity, 1),
            image_file_name("photos", 2, ImageKind::Data, 9),
            image_file_name("photos", 1, ImageKind::Data, 1),
        ];
        assert_eq!(names[5], "photos-gen0001-disc0001.iso");
        assert_eq!(names[0], "photos-gen0002-parity0001.iso");
        let mut by_text = names.to_vec();
        by_text.sort();
        let mut by_order = names.to_vec();
        by_order.sort_by_key(|n| parse_image_file_name(n).unwrap().burn_order());
        assert_eq!(by_text, by_order);
        assert_eq!(
            by_text,
            [
                "photos-gen0001-disc0001.iso",
                "photos-gen0001-disc0002.iso",
                "photos-gen0001-parity0001.iso",
                "photos-gen0002-disc0009.iso",
                "photos-gen0002-disc0010.iso",
                "photos-gen0002-parity0001.iso",
            ]
        );
    }

    #[test]
    fn parses_tricky_chain_names_and_old_names() {
        let n = parse_image_file_name(&image_file_name(
            "a-gen0003-disc0001",
            12,
            ImageKind::Data,
            7,
        ))
        .unwrap();
        assert_eq!(n.chain.as_deref(), Some("a-gen0003-disc0001"));
        assert_eq!(
            (n.generation, n.kind, n.number),
            (Some(12), ImageKind::Data, 7)
        );
        let p = parse_image_file_name("Fotos ü-gen0001-parity0002.iso").unwrap();
        assert_eq!(
            (p.chain.as_deref(), p.kind, p.number),
            (Some("Fotos ü"), ImageKind::Parity, 2)
        );
        let old = parse_image_file_name("disc_0003.iso").unwrap();
        assert_eq!((old.chain, old.generation, old.number), (None, None, 3));
        for bad in [
            "disc_0001.iso.partial",
            ".photos-gen0001-disc0001.iso.partial",
            "-gen0001-disc0001.iso",
            "photos-gen1-disc0001.iso",
            "photos-gen0001-disc0000.iso",
            "photos-gen0001-disc00x1.iso",
            "fixed.iso",
            "disc_.iso",
        ] {
            assert_eq!(parse_image_file_name(bad), None, "{bad}");
        }
    }
}
