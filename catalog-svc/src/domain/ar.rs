//! AR assets: what a product's 3D model must carry to be placed in a room, and which of its
//! files a device gets — USDZ for iOS Quick Look, glTF binary for Android's Scene Viewer and
//! the web, the smallest level of detail on a slow network.

use oms_platform::error::FieldViolation;
use oms_proto::catalog::v1::{
    ArAsset, ArChoice, ArFormat, ArModel, ArPlacement, LevelOfDetail, NetworkHint, Platform,
};

/// The largest believable side of a product, metres (a wardrobe, a sofa, a garden shed).
const MAX_SIDE_M: f64 = 50.0;

/// What is wrong with `model` (under `field`), if anything.
pub fn violations(field: &str, model: &ArModel) -> Vec<FieldViolation> {
    let mut wrong = Vec::new();
    let mut bad = |path: String, description: &str| {
        wrong.push(FieldViolation {
            field: path,
            description: description.to_owned(),
        });
    };
    match &model.dimensions {
        None => bad(
            format!("{field}.dimensions"),
            "required: the product's real size",
        ),
        Some(size) => {
            for (side, value) in [
                ("width_m", size.width_m),
                ("height_m", size.height_m),
                ("depth_m", size.depth_m),
            ] {
                if !(value.is_finite() && value > 0.0 && value <= MAX_SIDE_M) {
                    bad(
                        format!("{field}.dimensions.{side}"),
                        "must be a size in metres above 0 and at most 50",
                    );
                }
            }
        }
    }
    if model.placement() == ArPlacement::Unspecified {
        bad(
            format!("{field}.placement"),
            "required: floor, wall or table",
        );
    }
    if model.assets.is_empty() {
        bad(format!("{field}.assets"), "at least one file");
    }
    for (i, asset) in model.assets.iter().enumerate() {
        let at = format!("{field}.assets[{i}]");
        if asset.format() == ArFormat::Unspecified {
            bad(format!("{at}.format"), "required: GLB or USDZ");
        }
        if asset.level_of_detail() == LevelOfDetail::Unspecified {
            bad(
                format!("{at}.level_of_detail"),
                "required: low, medium or high",
            );
        }
        if !is_https_url(&asset.url) {
            bad(format!("{at}.url"), "must be an https URL");
        } else if !has_extension_of(asset) {
            bad(
                format!("{at}.url"),
                "must name a file of its format (.glb or .usdz)",
            );
        }
        if asset.byte_size == 0 {
            bad(format!("{at}.byte_size"), "required: the file's size");
        }
        if !(asset.sha256.len() == 64
            && asset
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            bad(
                format!("{at}.sha256"),
                "must be the file's SHA-256 in lower-case hex",
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, asset) in model.assets.iter().enumerate() {
        if !seen.insert((asset.format, asset.level_of_detail)) {
            bad(
                format!("{field}.assets[{i}]"),
                "one file per format and level of detail",
            );
        }
    }
    wrong
}

fn is_https_url(text: &str) -> bool {
    text.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.contains(char::is_whitespace) && rest.len() > host.len()
    })
}

fn has_extension_of(asset: &ArAsset) -> bool {
    let path = asset
        .url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match asset.format() {
        ArFormat::Glb => path.ends_with(".glb"),
        ArFormat::Usdz => path.ends_with(".usdz"),
        ArFormat::Unspecified => false,
    }
}

/// The file for a device: its platform's format (nothing when the product has none in it),
/// the lowest level of detail on a slow network, the highest on a fast one, medium (or the
/// nearest below it) when the network is not known.
pub fn choose(model: &ArModel, platform: Platform, network: NetworkHint) -> Option<ArChoice> {
    let format = match platform {
        Platform::Ios => ArFormat::Usdz,
        Platform::Android | Platform::Web => ArFormat::Glb,
        Platform::Unspecified => return None,
    };
    let mut files: Vec<&ArAsset> = model
        .assets
        .iter()
        .filter(|a| a.format() == format)
        .collect();
    files.sort_by_key(|a| (a.level_of_detail, a.byte_size));
    let asset = match network {
        NetworkHint::Slow => files.first(),
        NetworkHint::Fast => files.last(),
        NetworkHint::Unspecified => files
            .iter()
            .rev()
            .find(|a| a.level_of_detail() as i32 <= LevelOfDetail::Medium as i32)
            .or(files.first()),
    }?;
    Some(ArChoice {
        asset: Some((*asset).clone()),
        dimensions: model.dimensions,
        placement: model.placement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_proto::catalog::v1::Dimensions;

    fn asset(format: ArFormat, lod: LevelOfDetail, size: u64) -> ArAsset {
        let ext = if format == ArFormat::Usdz {
            "usdz"
        } else {
            "glb"
        };
        ArAsset {
            format: format.into(),
            level_of_detail: lod.into(),
            url: format!("https://cdn.example.com/lamp-{}.{ext}", lod as i32),
            byte_size: size,
            sha256: "ab".repeat(32),
        }
    }

    fn lamp() -> ArModel {
        ArModel {
            dimensions: Some(Dimensions {
                width_m: 0.3,
                height_m: 1.6,
                depth_m: 0.3,
            }),
            placement: ArPlacement::Floor.into(),
            assets: vec![
                asset(ArFormat::Glb, LevelOfDetail::High, 9_000_000),
                asset(ArFormat::Glb, LevelOfDetail::Low, 400_000),
                asset(ArFormat::Glb, LevelOfDetail::Medium, 2_000_000),
                asset(ArFormat::Usdz, LevelOfDetail::High, 12_000_000),
                asset(ArFormat::Usdz, LevelOfDetail::Low, 600_000),
            ],
        }
    }

    fn chosen(platform: Platform, network: NetworkHint) -> Option<(ArFormat, LevelOfDetail)> {
        choose(&lamp(), platform, network).map(|c| {
            let a = c.asset.unwrap();
            (a.format(), a.level_of_detail())
        })
    }

    #[test]
    fn each_platform_gets_its_format_and_a_slow_network_the_small_file() {
        use ArFormat::*;
        use LevelOfDetail::*;
        assert_eq!(chosen(Platform::Ios, NetworkHint::Slow), Some((Usdz, Low)));
        assert_eq!(chosen(Platform::Ios, NetworkHint::Fast), Some((Usdz, High)));
        assert_eq!(
            chosen(Platform::Android, NetworkHint::Slow),
            Some((Glb, Low))
        );
        assert_eq!(
            chosen(Platform::Android, NetworkHint::Fast),
            Some((Glb, High))
        );
        assert_eq!(
            chosen(Platform::Web, NetworkHint::Unspecified),
            Some((Glb, Medium))
        );
        assert_eq!(
            chosen(Platform::Ios, NetworkHint::Unspecified),
            Some((Usdz, Low)),
            "no medium USDZ: the nearest below"
        );
        assert_eq!(chosen(Platform::Unspecified, NetworkHint::Fast), None);
        let dims = choose(&lamp(), Platform::Ios, NetworkHint::Fast)
            .unwrap()
            .dimensions
            .unwrap();
        assert_eq!(dims.height_m, 1.6);
    }

    #[test]
    fn a_model_without_dimensions_or_with_a_bad_url_is_refused() {
        assert!(violations("product.ar", &lamp()).is_empty());
        let mut no_size = lamp();
        no_size.dimensions = None;
        let mut bad_url = lamp();
        bad_url.assets[0].url = "http://cdn.example.com/lamp.glb".into();
        let mut wrong_file = lamp();
        wrong_file.assets[3].url = "https://cdn.example.com/lamp.glb".into();
        let mut bad_hash = lamp();
        bad_hash.assets[1].sha256 = "XYZ".into();
        let mut twice = lamp();
        twice
            .assets
            .push(asset(ArFormat::Glb, LevelOfDetail::Low, 1));
        for (model, field) in [
            (no_size, "product.ar.dimensions"),
            (bad_url, "product.ar.assets[0].url"),
            (wrong_file, "product.ar.assets[3].url"),
            (bad_hash, "product.ar.assets[1].sha256"),
            (twice, "product.ar.assets[5]"),
        ] {
            let wrong = violations("product.ar", &model);
            assert!(wrong.iter().any(|v| v.field == field), "{field}: {wrong:?}");
        }
    }
}
