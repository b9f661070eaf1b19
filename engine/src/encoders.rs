//! The one table of encoder properties (house style rule 4). Units differ per
//! element, so each entry says what its bitrate property counts.

use crate::plan::EncoderConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitrateUnit {
    /// kbit/s (x264enc).
    Kbps,
    /// bit/s (openh264enc, avenc_aac, voaacenc).
    Bps,
}

pub struct EncoderEntry {
    pub element: &'static str,
    pub bitrate_property: &'static str,
    pub bitrate_unit: BitrateUnit,
    /// Property that caps the distance between keyframes, in frames.
    pub gop_property: Option<&'static str>,
    /// Fixed settings, as `gst-launch` would write them.
    pub fixed: &'static [(&'static str, &'static str)],
}

pub const TABLE: &[EncoderEntry] = &[
    EncoderEntry {
        element: "x264enc",
        bitrate_property: "bitrate",
        bitrate_unit: BitrateUnit::Kbps,
        gop_property: Some("key-int-max"),
        // Scene-cut keyframes would break cross-rung alignment; we force the
        // keyframes at segment boundaries ourselves. Closed GOPs keep each
        // segment independently decodable.
        fixed: &[
            ("speed-preset", "veryfast"),
            // Four encoders share two cores: two frame threads each and a
            // short threaded lookahead keep the speed and hold fewer frames
            // (benches/RESULTS.md: 630 -> 567 MB at the same wall time).
            ("threads", "2"),
            ("sync-lookahead", "2"),
            ("bframes", "2"),
            ("b-adapt", "false"),
            ("option-string", "scenecut=0:open-gop=0"),
        ],
    },
    EncoderEntry {
        element: "openh264enc",
        bitrate_property: "bitrate",
        bitrate_unit: BitrateUnit::Bps,
        gop_property: Some("gop-size"),
        fixed: &[
            ("rate-control", "bitrate"),
            ("scene-change-detection", "false"),
        ],
    },
    // Hardware encoders: constant bit rate so the measured BANDWIDTH matches
    // the ladder, and no B-frames so every GOP is closed like x264's.
    EncoderEntry {
        element: "nvcudah264enc",
        bitrate_property: "bitrate",
        bitrate_unit: BitrateUnit::Kbps,
        gop_property: Some("gop-size"),
        fixed: &[("rc-mode", "cbr"), ("b-frames", "0")],
    },
    EncoderEntry {
        element: "nvh264enc",
        bitrate_property: "bitrate",
        bitrate_unit: BitrateUnit::Kbps,
        gop_property: Some("gop-size"),
        fixed: &[("rc-mode", "cbr"), ("bframes", "0")],
    },
    EncoderEntry {
        element: "vah264enc",
        bitrate_property: "bitrate",
        bitrate_unit: BitrateUnit::Kbps,
        gop_property: Some("key-int-max"),
        fixed: &[("rate-control", "cbr"), ("b-frames", "0")],
    },
    EncoderEntry {
        element: "qsvh264enc",
        bitrate_property: "bitrate",
        bitrate_unit: BitrateUnit::Kbps,
        gop_property: Some("gop-size"),
        fixed: &[("rate-control", "cbr"), ("b-frames", "0")],
    },
    EncoderEntry {
        element: "x265enc",
        bitrate_property: "bitrate",
        bitrate_unit: BitrateUnit::Kbps,
        gop_property: Some("key-int-max"),
        fixed: &[
            ("speed-preset", "veryfast"),
            ("option-string", "scenecut=0:open-gop=0"),
        ],
    },
    EncoderEntry {
        element: "avenc_aac",
        bitrate_property: "bitrate",
        bitrate_unit: BitrateUnit::Bps,
        gop_property: None,
        fixed: &[],
    },
    EncoderEntry {
        element: "voaacenc",
        bitrate_property: "bitrate",
        bitrate_unit: BitrateUnit::Bps,
        gop_property: None,
        fixed: &[],
    },
];

pub fn entry(element: &str) -> Option<&'static EncoderEntry> {
    TABLE.iter().find(|e| e.element == element)
}

/// Build the configuration for `element` at `bitrate_kbps`, with keyframes at
/// most `gop_frames` apart where the element has such a setting.
pub fn configure(
    entry: &EncoderEntry,
    bitrate_kbps: u32,
    gop_frames: Option<u32>,
) -> EncoderConfig {
    let bitrate = match entry.bitrate_unit {
        BitrateUnit::Kbps => u64::from(bitrate_kbps),
        BitrateUnit::Bps => u64::from(bitrate_kbps) * 1000,
    };
    let mut properties: Vec<(String, String)> = entry
        .fixed
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    properties.push((entry.bitrate_property.into(), bitrate.to_string()));
    if let (Some(prop), Some(frames)) = (entry.gop_property, gop_frames) {
        properties.push((prop.into(), frames.to_string()));
    }
    EncoderConfig {
        element: entry.element.into(),
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_applied() {
        let x = configure(entry("x264enc").unwrap(), 2800, Some(360));
        assert!(x.properties.contains(&("bitrate".into(), "2800".into())));
        assert!(x.properties.contains(&("key-int-max".into(), "360".into())));
        let o = configure(entry("openh264enc").unwrap(), 2800, Some(360));
        assert!(o.properties.contains(&("bitrate".into(), "2800000".into())));
        let a = configure(entry("avenc_aac").unwrap(), 128, None);
        assert_eq!(
            a.properties,
            vec![("bitrate".to_string(), "128000".to_string())]
        );
    }
}
