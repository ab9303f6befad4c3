//! QR rendering: SVG, PNG data URL, and a terminal rendering for headless servers.

use base64::{Engine, engine::general_purpose::STANDARD};
use qrcode::{
    EcLevel, QrCode,
    render::{svg, unicode},
};

use crate::error::{AppError, AppResult};

fn code(payload: &str) -> AppResult<QrCode> {
    QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::L)
        .map_err(|e| AppError::internal(anyhow::anyhow!("QR encoding failed: {e}")))
}

/// An SVG document.
pub fn svg(payload: &str) -> AppResult<String> {
    Ok(code(payload)?
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

/// A `data:image/png;base64,…` URL.
pub fn png_data_url(payload: &str) -> AppResult<String> {
    let img = code(payload)?
        .render::<image::Luma<u8>>()
        .min_dimensions(256, 256)
        .build();
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| AppError::internal(anyhow::anyhow!("PNG encoding failed: {e}")))?;
    Ok(format!("data:image/png;base64,{}", STANDARD.encode(bytes)))
}

/// Half-block characters, two QR rows per text line, for the log.
pub fn terminal(payload: &str) -> AppResult<String> {
    Ok(code(payload)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_format() {
        let payload = "2@abc,def,ghi,jkl";
        let s = svg(payload).unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"));
        let p = png_data_url(payload).unwrap();
        let png = STANDARD
            .decode(p.trim_start_matches("data:image/png;base64,"))
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoded = image::load_from_memory(&png).unwrap();
        assert!(decoded.width() >= 256);
        assert!(terminal(payload).unwrap().lines().count() > 10);
    }
}
