//! What the harness's integration tests share: the programs under test, and readers of what
//! they write.

// Each test crate includes this module and uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The harness program.
pub fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_harness"))
}

/// The endpoint program beside the harness, built first if this test runs on its own.
pub fn endpoint() -> PathBuf {
    let path = harness().with_file_name("endpoint");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "endpoint"])
            .status()
            .expect("running cargo build -p endpoint");
        assert!(status.success(), "building the endpoint failed");
    }
    path
}

/// A decoded PNG image.
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Samples per pixel (3 for RGB, 4 for RGBA).
    pub channels: usize,
    /// The samples, row by row.
    pub samples: Vec<u8>,
}

impl Image {
    /// How many pixels are within `tolerance` of the colour `rgb`.
    pub fn count(&self, rgb: [u8; 3], tolerance: u8) -> usize {
        self.samples
            .chunks(self.channels)
            .filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= tolerance))
            .count()
    }
}

/// Decodes a PNG file, failing the test if it does not decode.
pub fn decode_png(path: &std::path::Path) -> Image {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
    let mut samples = vec![0; reader.output_buffer_size().expect("a sane size")];
    let frame = reader
        .next_frame(&mut samples)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    samples.truncate(frame.buffer_size());
    Image {
        width: frame.width,
        height: frame.height,
        channels: frame.color_type.samples(),
        samples,
    }
}

/// Parses a page (XHTML) or drawing (SVG) strictly, every tag closed; returns how many times
/// each element name occurs.
pub fn parse_markup(path: &std::path::Path) -> std::collections::BTreeMap<String, usize> {
    use quick_xml::events::Event;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut elements = std::collections::BTreeMap::new();
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let name = e.name();
                let name = name.into_inner().to_owned();
                *elements.entry(name).or_default() += 1;
            }
            Ok(_) => {}
            Err(e) => panic!(
                "{} does not parse at byte {}: {e}",
                path.display(),
                reader.buffer_position()
            ),
        }
    }
    elements
}
