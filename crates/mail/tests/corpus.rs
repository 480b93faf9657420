//! A corpus of real-world mail shapes, built here so that every case says what it expects: every
//! charset in bodies and subjects under every transfer encoding, mail with missing and wrong
//! declarations, broken encoded words, RFC 2231 names, automatic mail and bounces, and malformed
//! input that must parse without a panic.

#![allow(clippy::unwrap_used)]

use encoding_rs::Encoding;
use helpdesk_mail::{Automatic, parse};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn quoted_printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut line = 0;
    for &byte in bytes {
        let piece = if byte.is_ascii_graphic() && byte != b'=' || byte == b' ' {
            (byte as char).to_string()
        } else {
            format!("={byte:02X}")
        };
        if line + piece.len() > 72 {
            out.push_str("=\r\n");
            line = 0;
        }
        line += piece.len();
        out.push_str(&piece);
    }
    out
}

/// ISO-2022-KR from EUC-KR: shift out around the 7-bit pairs of each Korean run.
fn iso_2022_kr(text: &str) -> Vec<u8> {
    let euc = encoding_rs::EUC_KR.encode(text).0;
    let mut out = b"\x1b$)C".to_vec();
    let mut shifted = false;
    for &byte in euc.iter() {
        if byte >= 0x80 && !shifted {
            out.push(0x0e);
            shifted = true;
        } else if byte < 0x80 && shifted {
            out.push(0x0f);
            shifted = false;
        }
        out.push(byte & 0x7f);
    }
    if shifted {
        out.push(0x0f);
    }
    out
}

struct Case {
    label: &'static str,
    text: &'static str,
}

const CASES: &[Case] = &[
    Case { label: "EUC-KR", text: "주문한 상품이 아직 도착하지 않았습니다" },
    // The label Outlook writes for CP949, with a syllable only CP949 has (똠).
    Case { label: "ks_c_5601-1987", text: "똠방각하 환불 요청드립니다" },
    Case { label: "ISO-2022-KR", text: "배송 조회 부탁드립니다" },
    Case { label: "ISO-2022-JP", text: "注文の返金をお願いします" },
    Case { label: "GB18030", text: "我想申请退款，订单号" },
    Case { label: "windows-1252", text: "Le café est arrivé froid" },
    Case { label: "windows-1251", text: "Заказ не доставлен" },
    Case { label: "ISO-8859-1", text: "Grüße aus München" },
    Case { label: "UTF-8", text: "환불 refund 退款 ✓" },
];

fn encode(case: &Case) -> Vec<u8> {
    if case.label == "ISO-2022-KR" {
        return iso_2022_kr(case.text);
    }
    let encoding = Encoding::for_label(case.label.as_bytes()).unwrap();
    encoding.encode(case.text).0.into_owned()
}

fn message(subject_header: &str, content_type: &str, transfer: &str, body: &str) -> Vec<u8> {
    format!(
        "From: =?UTF-8?B?6rmA66+87IiY?= <kim@example.com>\r\nTo: support@acme.test\r\nSubject: {subject_header}\r\n\
         Message-ID: <m1@example.com>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n\
         Content-Type: {content_type}\r\nContent-Transfer-Encoding: {transfer}\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[test]
fn every_charset_decodes_in_the_body_under_every_transfer_encoding() {
    let mut checked = 0;
    for case in CASES {
        let bytes = encode(case);
        let content_type = format!("text/plain; charset=\"{}\"", case.label);
        let bodies = [("base64", base64(&bytes)), ("quoted-printable", quoted_printable(&bytes))];
        for (transfer, body) in bodies {
            let parsed = parse(&message("hello", &content_type, transfer, &body)).unwrap();
            assert_eq!(parsed.text.trim(), case.text, "{} in {transfer}", case.label);
            checked += 1;
        }
        if !case.label.starts_with("ISO-2022") && !case.label.starts_with("UTF") {
            // 8bit: the raw bytes in the message itself.
            let mut raw = message("hello", &content_type, "8bit", "").to_vec();
            raw.truncate(raw.len() - 2);
            raw.extend(&bytes);
            raw.extend(b"\r\n");
            let parsed = parse(&raw).unwrap();
            assert_eq!(parsed.text.trim(), case.text, "{} in 8bit", case.label);
            checked += 1;
        }
    }
    assert_eq!(checked, 24);
}

#[test]
fn every_charset_decodes_in_encoded_word_subjects() {
    for case in CASES.iter().filter(|case| case.label != "ISO-2022-KR") {
        let bytes = encode(case);
        for subject in [format!("=?{}?B?{}?=", case.label, base64(&bytes)), q_word(case.label, &bytes)] {
            let parsed = parse(&message(&subject, "text/plain; charset=utf-8", "7bit", "body")).unwrap();
            assert_eq!(parsed.subject, case.text, "{subject}");
        }
    }
}

fn q_word(label: &str, bytes: &[u8]) -> String {
    let encoded: String = bytes
        .iter()
        .map(|&b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("={b:02X}") })
        .collect();
    format!("=?{label}?Q?{encoded}?=")
}

#[test]
fn a_korean_name_in_the_from_header_is_decoded() {
    let parsed = parse(&message("x", "text/plain", "7bit", "x")).unwrap();
    let from = parsed.from.unwrap();
    assert_eq!((from.name.as_str(), from.address.as_str()), ("김민수", "kim@example.com"));
}

#[test]
fn undeclared_and_misdeclared_korean_is_detected() {
    let euc = encoding_rs::EUC_KR.encode("결제가 두 번 되었습니다. 확인 부탁드립니다.").0.into_owned();
    for content_type in ["text/plain", "text/plain; charset=us-ascii", "text/plain; charset=x-unknown"] {
        let mut raw = message("x", content_type, "8bit", "").to_vec();
        raw.truncate(raw.len() - 2);
        raw.extend(&euc);
        let parsed = parse(&raw).unwrap();
        assert_eq!(parsed.text.trim(), "결제가 두 번 되었습니다. 확인 부탁드립니다.", "{content_type}");
        assert!(!parsed.notes.is_empty());
    }
}

#[test]
fn a_raw_euc_kr_subject_is_detected() {
    let mut raw = b"From: kim@example.com\r\nSubject: ".to_vec();
    raw.extend(encoding_rs::EUC_KR.encode("환불 요청합니다 주문번호").0.iter());
    raw.extend(b"\r\n\r\nbody\r\n");
    assert_eq!(parse(&raw).unwrap().subject, "환불 요청합니다 주문번호");
}

#[test]
fn utf8_headers_are_read_as_they_are() {
    let raw = "From: 김민수 <kim@example.com>\r\nSubject: 배송 문의\r\n\r\n본문\r\n";
    let parsed = parse(raw.as_bytes()).unwrap();
    assert_eq!(parsed.subject, "배송 문의");
    assert_eq!(parsed.from.unwrap().name, "김민수");
}

#[test]
fn broken_encoded_words_keep_their_text() {
    for subject in ["=?UTF-8?B?7ZmY67aI?", "=?utf-8?q?caf=C3=A9", "=?x-unknown?B?7ZmY67aI?=", "=?UTF-8?B?***?="] {
        let parsed = parse(&message(subject, "text/plain", "7bit", "x")).unwrap();
        assert!(!parsed.subject.is_empty(), "{subject}");
    }
}

#[test]
fn rfc_2231_file_names_are_decoded() {
    let raw = "From: kim@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
               Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n\
               --b\r\nContent-Type: application/pdf\r\n\
               Content-Disposition: attachment; filename*=UTF-8''%ED%99%98%EB%B6%88%20%EC%98%81%EC%88%98%EC%A6%9D.pdf\r\n\
               Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b\r\n\
               Content-Type: image/png; name=\"=?UTF-8?B?7IKs7KeELnBuZw==?=\"\r\nContent-ID: <img1@example.com>\r\n\
               Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b--\r\n";
    let parsed = parse(raw.as_bytes()).unwrap();
    assert_eq!(parsed.text.trim(), "see file");
    let names: Vec<&str> = parsed.attachments.iter().map(|a| a.filename.as_str()).collect();
    assert_eq!(names, ["환불 영수증.pdf", "사진.png"]);
    assert_eq!(parsed.attachments[0].data, b"%PDF-");
    assert_eq!(parsed.attachments[1].content_id.as_deref(), Some("img1@example.com"));
    assert!(parsed.attachments[1].inline);
}

#[test]
fn threading_headers_are_read() {
    let raw = "From: kim@example.com\r\nSubject: Re: x\r\nMessage-ID: <r2@example.com>\r\n\
               In-Reply-To: <a1@acme.test>\r\nReferences: <root@acme.test>\r\n <a1@acme.test>\r\n\
               Thread-Index: AdbH5nSpQ8b0D4hGSm6xAgfNnzGtOQAAAbBQ\r\n\r\nok\r\n";
    let parsed = parse(raw.as_bytes()).unwrap();
    assert_eq!(parsed.message_id.as_deref(), Some("r2@example.com"));
    assert_eq!(parsed.in_reply_to, ["a1@acme.test"]);
    assert_eq!(parsed.references, ["root@acme.test", "a1@acme.test"]);
    assert_eq!(parsed.thread_root.as_deref().map(str::len), Some(44));
}

#[test]
fn html_only_mail_has_text_too() {
    let parsed =
        parse(&message("x", "text/html; charset=utf-8", "7bit", "<p>환불&nbsp;요청</p><p>감사합니다</p>")).unwrap();
    assert_eq!(parsed.text, "환불 요청\n\n감사합니다");
    assert!(parsed.html.unwrap().contains("<p>"));
}

fn automatic(headers: &str) -> Option<Automatic> {
    let raw = format!("From: kim@example.com\r\nSubject: Hello\r\n{headers}\r\nbody\r\n");
    parse(raw.as_bytes()).unwrap().automatic
}

#[test]
fn automatic_mail_is_recognised_by_its_headers() {
    for headers in [
        "Auto-Submitted: auto-replied\r\n",
        "Auto-Submitted: auto-generated\r\n",
        "X-Autoreply: yes\r\n",
        "X-Auto-Response-Suppress: All\r\n",
        "Precedence: bulk\r\n",
        "Precedence: junk\r\n",
        "Precedence: list\r\n",
        "List-Id: <news.example.com>\r\n",
    ] {
        assert!(automatic(headers).is_some(), "{headers}");
    }
    assert_eq!(automatic("Auto-Submitted: no\r\n"), None);
    assert_eq!(automatic(""), None);
}

#[test]
fn out_of_office_subjects_are_auto_replies() {
    for subject in
        ["Automatic reply: your order", "자동 회신: 환불", "[자동응답] 부재중입니다", "Out of Office: back Monday"]
    {
        let raw = format!("From: kim@example.com\r\nSubject: {subject}\r\n\r\naway\r\n");
        assert!(matches!(parse(raw.as_bytes()).unwrap().automatic, Some(Automatic::AutoReply { .. })), "{subject}");
    }
    let raw = "From: kim@example.com\r\nSubject: Re: out of office hours support?\r\n\r\nq\r\n";
    assert_eq!(parse(raw.as_bytes()).unwrap().automatic, None);
}

#[test]
fn a_delivery_status_notification_names_the_failed_message() {
    let raw = "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: support@acme.test\r\n\
               Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
               Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n\
               --r\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n\
               --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
               Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
               --r\r\nContent-Type: message/rfc822\r\n\r\nFrom: support@acme.test\r\nTo: gone@example.com\r\n\
               Message-ID: <reply-42@acme.test>\r\nSubject: Re: refund\r\n\r\nWe refunded it.\r\n--r--\r\n";
    let Some(Automatic::Bounce(bounce)) = parse(raw.as_bytes()).unwrap().automatic else { panic!("a bounce") };
    assert_eq!(bounce.original_message_id.as_deref(), Some("reply-42@acme.test"));
    assert_eq!(bounce.recipient.as_deref(), Some("gone@example.com"));
    assert_eq!(bounce.status.as_deref(), Some("5.1.1"));
    assert!(bounce.permanent);
}

#[test]
fn a_mailer_daemon_in_prose_is_a_bounce() {
    let raw = "From: postmaster@example.com\r\nSubject: failure notice\r\n\r\n\
               Sorry, we were unable to deliver your message.\r\n\r\n--- Below this line is a copy ---\r\n\
               Message-ID: <reply-7@acme.test>\r\n";
    let Some(Automatic::Bounce(bounce)) = parse(raw.as_bytes()).unwrap().automatic else { panic!("a bounce") };
    assert_eq!(bounce.original_message_id.as_deref(), Some("reply-7@acme.test"));
}

#[test]
fn malformed_mail_parses_without_panic() {
    let mut many_parts = String::from("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n");
    for n in 0..1000 {
        many_parts.push_str(&format!("--x\r\nContent-Type: application/octet-stream\r\n\r\npart {n}\r\n"));
    }
    many_parts.push_str("--x--\r\n");
    let parsed = parse(many_parts.as_bytes()).unwrap();
    assert_eq!(parsed.attachments.len(), helpdesk_mail::MAX_ATTACHMENTS);

    let truncated = "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\
                     Content-Type: text/plain\r\n\r\nhalf a mess";
    assert!(parse(truncated.as_bytes()).unwrap().text.contains("half a mess"));

    let nul = b"From: a@example.com\r\nSubject: nul\0here\r\n\r\nbody\0with nul\r\n";
    assert!(parse(nul).is_ok());

    let lf_only = "From: a@example.com\nSubject: lf\n\nbody\n";
    assert_eq!(parse(lf_only.as_bytes()).unwrap().subject, "lf");

    let long_line =
        format!("From: a@example.com\r\nSubject: {}\r\n\r\n{}\r\n", "x".repeat(20_000), "y".repeat(200_000));
    assert!(parse(long_line.as_bytes()).is_ok());

    let bad_base64 = message("x", "text/plain; charset=utf-8", "base64", "!!!not base64***");
    assert!(parse(&bad_base64).is_ok());

    assert!(parse(b"").is_err());
}

proptest::proptest! {
    #[test]
    fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn any_header_values_parse_without_panic(subject in "\\PC{0,200}", body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let mut raw = format!("From: a@example.com\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=euc-kr\r\n\r\n").into_bytes();
        raw.extend(body);
        let parsed = parse(&raw);
        proptest::prop_assert!(parsed.is_ok());
    }
}
