//! What the MIME parser cannot decode on its own: ISO-2022-KR (which the WHATWG encodings, and
//! so encoding_rs, map to the replacement character), and text whose charset is missing, unknown
//! or wrong — common in Korean mail from older clients, which send EUC-KR bytes as "us-ascii" or
//! with no declaration at all. Such text is detected, never dropped.

use encoding_rs::{EUC_KR, Encoding};

/// The text of `bytes` declared as `declared`, where the declaration cannot be trusted; `None`
/// where the declared charset decodes them as they are.
pub(crate) fn redecode(declared: Option<&str>, bytes: &[u8]) -> Option<String> {
    let label = declared.map(|label| label.trim().trim_matches('"').to_ascii_lowercase());
    match label.as_deref() {
        Some("iso-2022-kr" | "csiso2022kr") => Some(iso_2022_kr(bytes)),
        // Declared UTF-8 or ASCII, and it is: nothing to do.
        Some("utf-8" | "utf8" | "us-ascii" | "ascii") | None if std::str::from_utf8(bytes).is_ok() => None,
        Some("utf-8" | "utf8" | "us-ascii" | "ascii") | None => Some(detect(bytes)),
        Some(label) => match Encoding::for_label(label.as_bytes()) {
            // The replacement encoding (ISO-2022-CN, HZ) would turn the text into U+FFFD.
            Some(encoding) if encoding != encoding_rs::REPLACEMENT => None,
            // An unknown name: read the bytes for what they are.
            _ => Some(detect(bytes)),
        },
    }
}

/// The text of header bytes that are not UTF-8 (RFC 6532 allows UTF-8; raw EUC-KR is common).
pub(crate) fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => detect(bytes),
    }
}

/// Guesses the charset as a browser would (chardetng), preferring UTF-8 where the bytes are valid.
fn detect(bytes: &[u8]) -> String {
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(bytes, true);
    let encoding = detector.guess(None, true);
    encoding.decode_without_bom_handling(bytes).0.into_owned()
}

const ESC: u8 = 0x1b;
const SHIFT_OUT: u8 = 0x0e;
const SHIFT_IN: u8 = 0x0f;

/// RFC 1557: ASCII, with KS X 1001 between SO and SI as pairs of 7-bit bytes, which are EUC-KR
/// with the high bit cleared. Each line starts in ASCII.
fn iso_2022_kr(bytes: &[u8]) -> String {
    let mut euc_kr = Vec::with_capacity(bytes.len());
    let mut korean = false;
    let mut rest = bytes;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            // The designation `ESC $ ) C` announces the charset; it carries no text.
            ESC if rest.starts_with(b"$)C") => rest = &rest[3..],
            SHIFT_OUT => korean = true,
            SHIFT_IN => korean = false,
            b'\r' | b'\n' => {
                korean = false;
                euc_kr.push(byte);
            }
            0x21..=0x7e if korean => euc_kr.push(byte | 0x80),
            _ => euc_kr.push(byte),
        }
    }
    EUC_KR.decode_without_bom_handling(&euc_kr).0.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn euc_kr(text: &str) -> Vec<u8> {
        EUC_KR.encode(text).0.into_owned()
    }

    #[test]
    fn iso_2022_kr_decodes_shifted_korean_between_ascii() {
        let korean: Vec<u8> = euc_kr("안녕하세요").iter().map(|b| b & 0x7f).collect();
        let mut bytes = b"\x1b$)CHello \x0e".to_vec();
        bytes.extend(&korean);
        bytes.extend(b"\x0f!\r\n");
        assert_eq!(redecode(Some("ISO-2022-KR"), &bytes).unwrap(), "Hello 안녕하세요!\r\n");
    }

    #[test]
    fn undeclared_euc_kr_is_detected() {
        let bytes = euc_kr("주문한 상품이 아직 도착하지 않았습니다. 배송 조회 부탁드립니다.");
        assert_eq!(redecode(None, &bytes).unwrap(), "주문한 상품이 아직 도착하지 않았습니다. 배송 조회 부탁드립니다.");
        assert_eq!(
            redecode(Some("us-ascii"), &bytes).unwrap(),
            "주문한 상품이 아직 도착하지 않았습니다. 배송 조회 부탁드립니다."
        );
    }

    #[test]
    fn a_trustworthy_declaration_is_left_to_the_parser() {
        assert_eq!(redecode(Some("utf-8"), "환불".as_bytes()), None);
        assert_eq!(redecode(Some("euc-kr"), &euc_kr("환불")), None);
        assert_eq!(redecode(None, b"plain ascii"), None);
    }

    #[test]
    fn an_unknown_charset_name_is_read_for_what_the_bytes_are() {
        assert_eq!(redecode(Some("x-unknown-korean"), &euc_kr("배송 문의드립니다")).unwrap(), "배송 문의드립니다");
    }
}
