//! The headers of each body part: text parts, attachments and multipart
//! containers, with the checks on what the caller gave for them.

use super::headers::{
    Header, MAX_FILENAME, MAX_HEADER_VALUE, check_header_text, check_length, check_part_field_name, filename_params,
    name_param, unstructured,
};
use super::quoted_printable::TextEncoding;
use super::{Attachment, Disposition, PartEncoding};
use crate::address::quote;
use crate::error::{Phase, SmtpError};

/// RFC 2045 tspecials: the characters a MIME token cannot contain.
const TSPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";

/// Which of the two text bodies a part carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Plain,
    Html,
}

/// The three multipart containers the builder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipartKind {
    /// The body followed by attachments.
    Mixed,
    /// HTML with the images it shows through `cid:` URLs.
    Related,
    /// The same content as plain text and as HTML, the preferred one last.
    Alternative,
}

impl MultipartKind {
    fn subtype(self) -> &'static str {
        match self {
            MultipartKind::Mixed => "mixed",
            MultipartKind::Related => "related",
            MultipartKind::Alternative => "alternative",
        }
    }

    /// One letter that tells the boundaries of nested containers apart.
    /// All boundaries share their length, so none is a prefix of another.
    pub fn boundary_tag(self) -> char {
        match self {
            MultipartKind::Mixed => 'm',
            MultipartKind::Related => 'r',
            MultipartKind::Alternative => 'a',
        }
    }
}

pub fn text_part_headers(kind: TextKind, encoding: TextEncoding) -> String {
    let subtype = match kind {
        TextKind::Plain => "plain",
        TextKind::Html => "html",
    };
    let mut out = Header::simple("Content-Type", &format!("text/{subtype}; charset=utf-8"));
    out.push_str(&Header::simple("Content-Transfer-Encoding", encoding.header_value()));
    out
}

pub fn multipart_headers(kind: MultipartKind, boundary: &str) -> String {
    let mut header = Header::new("Content-Type");
    header.push(format!(" multipart/{}", kind.subtype()));
    // `=` is a tspecial, so the boundary must be quoted.
    header.push_param(&format!("boundary=\"{boundary}\""));
    header.render()
}

/// Content-Type, Content-Transfer-Encoding, Content-Disposition and
/// Content-ID of attachment `index`, after checking what the caller gave.
pub fn attachment_headers(attachment: &Attachment, index: usize) -> Result<String, SmtpError> {
    part_headers(attachment, index, true)
}

/// The headers of alternative `index` (a version of the body, such as a
/// text/calendar invitation): like an attachment's, without a
/// Content-Disposition, so readers offer it as the body.
pub fn alternative_headers(alternative: &Attachment, index: usize) -> Result<String, SmtpError> {
    part_headers(alternative, index, false)
}

fn part_headers(attachment: &Attachment, index: usize, attached: bool) -> Result<String, SmtpError> {
    if attachment.encoding == PartEncoding::Raw {
        return raw_part_headers(attachment, index);
    }
    for (name, value) in &attachment.headers {
        check_part_field_name(name, index)?;
        let what = format!("the value of header {name} of attachment {index}");
        check_header_text(&what, value)?;
        check_length(&what, value, MAX_HEADER_VALUE, true)?;
    }
    let filename = attachment.filename.as_deref().filter(|f| !f.is_empty());
    if let Some(filename) = filename {
        let what = format!("the filename of attachment {index}");
        check_header_text(&what, filename)?;
        check_length(&what, filename, MAX_FILENAME, false)?;
    }
    let content_type = match &attachment.content_type {
        Some(given) => checked_content_type(given, index)?,
        None => guess_content_type(filename.unwrap_or("")).to_string(),
    };
    let cid = attachment
        .cid
        .as_deref()
        .map(|cid| checked_content_id(cid, index))
        .transpose()?;

    let mut type_header = Header::new("Content-Type");
    type_header.push_text(&content_type);
    if let Some(filename) = filename {
        type_header.push_param(&name_param(filename));
    }

    let disposition = attachment.disposition.unwrap_or(if cid.is_some() {
        Disposition::Inline
    } else {
        Disposition::Attachment
    });
    let mut disposition_header = Header::new("Content-Disposition");
    disposition_header.push(format!(" {}", disposition.as_str()));
    for param in filename.map(filename_params).unwrap_or_default() {
        disposition_header.push_param(&param);
    }

    let mut out = type_header.render();
    out.push_str(&Header::simple(
        "Content-Transfer-Encoding",
        attachment.encoding.header_value(),
    ));
    if attached {
        out.push_str(&disposition_header.render());
    }
    if let Some(cid) = cid {
        out.push_str(&Header::simple("Content-ID", &format!("<{cid}>")));
    }
    for (name, value) in &attachment.headers {
        out.push_str(&unstructured(name, value));
    }
    Ok(out)
}

/// A raw part brings its own headers: the builder writes none, and refuses
/// the fields it would have written them from rather than drop them. In the
/// wasm build the JS layer refuses them before calling the engine (see the
/// module documentation of `mime`).
#[cfg(not(target_arch = "wasm32"))]
fn raw_part_headers(attachment: &Attachment, index: usize) -> Result<String, SmtpError> {
    let described = attachment.filename.is_some()
        || attachment.content_type.is_some()
        || attachment.cid.is_some()
        || attachment.disposition.is_some()
        || !attachment.headers.is_empty();
    if described {
        return Err(SmtpError::input(
            Phase::Data,
            format!("attachment {index} is raw MIME, with fields that go inside it."),
        )
        .with_hint("write them as its headers."));
    }
    Ok(String::new())
}

#[cfg(target_arch = "wasm32")]
fn raw_part_headers(_: &Attachment, _: usize) -> Result<String, SmtpError> {
    Ok(String::new())
}

/// `type/subtype`, optionally followed by `; parameters`. Multipart types
/// are refused: the builder makes the multipart structure itself, and a
/// base64-encoded multipart would not be read as one anyway.
fn checked_content_type(given: &str, index: usize) -> Result<String, SmtpError> {
    let (media_type, params) = match given.split_once(';') {
        Some((media_type, params)) => (media_type.trim(), Some(params.trim())),
        None => (given.trim(), None),
    };
    let is_token = |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'!'..=b'~') && !TSPECIALS.contains(&b));
    let well_formed = media_type
        .split_once('/')
        .is_some_and(|(t, s)| is_token(t) && is_token(s));
    let params_ok = params.is_none_or(|p| p.bytes().all(|b| matches!(b, b' '..=b'~')));
    if !well_formed || !params_ok {
        return Err(SmtpError::input(
            Phase::Data,
            format!(
                "the content type {} of attachment {index} is not a MIME type.",
                quote(given)
            ),
        )
        .with_hint("write it as type/subtype, like application/pdf or image/png."));
    }
    let media_type = media_type.to_ascii_lowercase();
    if media_type.starts_with("multipart/") {
        return Err(SmtpError::input(
            Phase::Data,
            format!("attachment {index} has the content type {media_type}, which the builder cannot attach."),
        )
        .with_hint("attach it as application/octet-stream, or send the whole message as raw."));
    }
    Ok(match params {
        Some(params) if !params.is_empty() => format!("{media_type}; {params}"),
        _ => media_type,
    })
}

/// A Content-ID, with or without its angle brackets: printable ASCII with
/// no space, no brackets and no quotes, so it can go in `<...>` and in a
/// `cid:` URL unchanged.
fn checked_content_id(given: &str, index: usize) -> Result<String, SmtpError> {
    let bare = given
        .strip_prefix('<')
        .and_then(|c| c.strip_suffix('>'))
        .unwrap_or(given);
    let valid = !bare.is_empty()
        && bare.len() <= 250
        && bare
            .bytes()
            .all(|b| matches!(b, b'!'..=b'~') && !b"<>\"\\".contains(&b));
    if !valid {
        return Err(SmtpError::input(
            Phase::Data,
            format!("the cid {} of attachment {index} is not a valid Content-ID.", quote(given)),
        )
        .with_hint("use printable ASCII without spaces, brackets or quotes, like logo@example.com, and refer to it as src=\"cid:logo@example.com\"."));
    }
    Ok(bare.to_string())
}

/// The type for a file name's extension, for the common cases; readers
/// mostly go by the extension anyway, so a miss is harmless.
fn guess_content_type(filename: &str) -> &'static str {
    let extension = filename.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        Some("htm" | "html") => "text/html",
        Some("ics") => "text/calendar",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::mime::AttachmentContent;

    fn attachment(filename: &str) -> Attachment {
        Attachment::from_bytes(filename, b"x".to_vec())
    }

    #[test]
    fn attachment_headers_name_type_disposition_and_cid() {
        let headers = attachment_headers(&attachment("a.pdf"), 0).unwrap();
        assert_eq!(
            headers,
            "Content-Type: application/pdf; name=\"a.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"a.pdf\"\r\n"
        );
        let inline = attachment("logo.png").with_cid("<logo@example.com>");
        let headers = attachment_headers(&inline, 0).unwrap();
        assert!(headers.contains("Content-Disposition: inline; filename=\"logo.png\"\r\n"));
        assert!(headers.ends_with("Content-ID: <logo@example.com>\r\n"));
    }

    #[test]
    fn without_a_filename_there_are_no_name_parameters() {
        let nameless = Attachment {
            filename: None,
            content_type: None,
            cid: None,
            disposition: None,
            content: AttachmentContent::Stream,
            headers: Vec::new(),
            encoding: Default::default(),
        };
        let headers = attachment_headers(&nameless, 0).unwrap();
        assert!(headers.starts_with("Content-Type: application/octet-stream\r\n"));
        assert!(headers.contains("Content-Disposition: attachment\r\n"));
    }

    #[test]
    fn content_types_are_checked_and_keep_parameters() {
        let a = attachment("x").with_content_type("Text/CSV; charset=utf-8");
        assert!(
            attachment_headers(&a, 0)
                .unwrap()
                .starts_with("Content-Type: text/csv; charset=utf-8;")
        );
        for bad in [
            "pdf",
            "application/",
            "a b/c",
            "text/plain\r\nBcc: x",
            "multipart/mixed",
        ] {
            let a = attachment("x").with_content_type(bad);
            assert_eq!(attachment_headers(&a, 3).unwrap_err().code, ErrorCode::Input, "{bad:?}");
        }
    }

    #[test]
    fn bad_cids_and_filenames_are_refused() {
        for bad in ["", "<>", "a b", "a\"b", "é@x"] {
            assert!(
                attachment_headers(&attachment("x").with_cid(bad), 0).is_err(),
                "{bad:?}"
            );
        }
        let err = attachment_headers(&attachment("evil\r\nX: y.txt"), 2).unwrap_err();
        assert!(err.message.contains("attachment 2"));
    }

    #[test]
    fn content_type_is_guessed_from_the_extension() {
        assert_eq!(guess_content_type("photo.JPG"), "image/jpeg");
        assert_eq!(guess_content_type("archive.tar.gz"), "application/octet-stream");
        assert_eq!(guess_content_type("noextension"), "application/octet-stream");
    }
}
