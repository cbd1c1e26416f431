//! One sentence per transcript line, for people learning what an SMTP
//! dialog says (the doctor's web page shows them beside the lines).
//! Credentials never reach here: the engine redacts them before a line
//! becomes a transcript line.

use super::usable_mechanisms;

/// Explains transcript lines in order: a reply is explained by the command
/// it answers, so the explainer remembers the commands still unanswered.
#[derive(Debug, Default)]
pub struct TranscriptExplainer {
    /// Verbs of commands sent and not yet answered, oldest first.
    awaiting: std::collections::VecDeque<String>,
    greeted: bool,
    /// The last server line was not the last line of its reply.
    continuing: bool,
}

impl TranscriptExplainer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The sentence for one line: `dir` is `"C"`, `"S"` or `"tls"`.
    pub fn explain(&mut self, dir: &str, text: &str) -> String {
        match dir {
            "C" => self.client(text),
            "S" => self.server(text),
            _ => tls_line(text).into(),
        }
        .to_string()
    }

    fn client(&mut self, text: &str) -> std::borrow::Cow<'static, str> {
        let verb = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let sentence = match verb.as_str() {
            "EHLO" | "LHLO" => "The client introduces itself and asks which extensions the server offers.",
            "HELO" => "The client introduces itself the old way (no extensions).",
            "STARTTLS" => "The client asks to switch this connection to TLS; nothing secret has been sent so far.",
            "AUTH" => {
                let mechanism = text.split(' ').nth(1).unwrap_or("").to_ascii_uppercase();
                self.awaiting.push_back(verb);
                return format!(
                    "The client logs in with AUTH {mechanism}; credentials are shown as <redacted> and are only ever sent over verified TLS."
                )
                .into();
            }
            "MAIL" => "The envelope sender: where bounces go.",
            "RCPT" => "One envelope recipient.",
            "DATA" => "The client asks to send the message itself.",
            "BDAT" => "A chunk of the message (CHUNKING), with its size up front.",
            "RSET" => "Resets the transaction.",
            "NOOP" => "Keeps the connection alive.",
            "QUIT" => "The client says goodbye.",
            "." => "End of the message data.",
            _ if text.starts_with('<') => {
                return "Message data (summarised here).".into();
            }
            _ if text.starts_with('(') => return "A note from wasmtp.".into(),
            _ => return "A step of the login (redacted).".into(),
        };
        if verb != "." {
            self.awaiting.push_back(verb);
        }
        sentence.into()
    }

    fn server(&mut self, text: &str) -> std::borrow::Cow<'static, str> {
        let code = text.get(..3).unwrap_or("");
        let last = text.as_bytes().get(3) != Some(&b'-');
        let rest = text.get(4..).unwrap_or("").trim();
        let first = !self.continuing;
        self.continuing = !last;
        let answers = if !self.greeted {
            "GREETING".to_string()
        } else {
            self.awaiting.front().cloned().unwrap_or_default()
        };
        if last {
            if self.greeted {
                self.awaiting.pop_front();
            }
            self.greeted = true;
        }
        let positive = code.starts_with('2') || code.starts_with('3');
        let sentence: &str = match (answers.as_str(), code) {
            ("GREETING", "220") => "The server's greeting: it is ready.",
            ("GREETING", _) => "The server refuses the session instead of greeting.",
            ("EHLO" | "LHLO", "250") => return ehlo_line(first, rest),
            ("STARTTLS", "220") => "The server agrees: the TLS handshake starts now.",
            ("STARTTLS", _) => "The server cannot start TLS.",
            ("AUTH", "334") => "The server asks for the next login step.",
            ("AUTH", "235") => "Login accepted.",
            ("AUTH", "535") => "Login refused: wrong user name or password (or an app password is needed).",
            ("AUTH", "534") => "Login refused: the provider wants a stronger method or an app password.",
            ("AUTH", "504") => "The server does not accept this login method.",
            ("MAIL", "250") => "The sender is accepted.",
            ("RCPT", "250" | "251") => "The recipient is accepted.",
            ("DATA", "354") => "Go ahead with the message; end it with a line holding a single dot.",
            ("QUIT", "221") => "The server says goodbye and closes the connection.",
            (_, "421") => "The server is closing the connection (busy, or a time-out on its side).",
            (_, "530") => "The server requires a login first.",
            (_, "454") => "A temporary TLS or login problem on the server.",
            (_, c) if c.starts_with('4') => "A temporary refusal: trying later may work.",
            (_, c) if c.starts_with('5') => "A permanent refusal.",
            _ if positive => "Accepted.",
            _ => "A reply wasmtp did not expect.",
        };
        sentence.into()
    }
}

/// One line of the EHLO reply: the server's name, then one extension per line.
fn ehlo_line(first: bool, rest: &str) -> std::borrow::Cow<'static, str> {
    if first {
        return "The server's name; the extensions it offers follow, one per line.".into();
    }
    let mut words = rest.split_whitespace();
    let keyword = words.next().unwrap_or("").to_ascii_uppercase();
    let params: Vec<String> = words.map(|w| w.to_ascii_uppercase()).collect();
    let sentence = match keyword.as_str() {
        "STARTTLS" => "Offers STARTTLS: this connection can be upgraded to TLS.",
        "AUTH" => {
            let usable = usable_mechanisms(&params);
            return if usable.is_empty() {
                format!(
                    "Login methods offered: {}; none of them is one wasmtp can use.",
                    params.join(" ")
                )
            } else {
                format!(
                    "Login methods offered: {} (wasmtp can use {}).",
                    params.join(" "),
                    usable.join(", ")
                )
            }
            .into();
        }
        "SIZE" => {
            return match params.first().and_then(|p| p.parse::<u64>().ok()).filter(|n| *n > 0) {
                Some(n) => format!(
                    "The largest message accepted: {}.{} MB.",
                    n / 1_000_000,
                    n % 1_000_000 / 100_000
                )
                .into(),
                None => "Announces a size limit.".into(),
            };
        }
        "PIPELINING" => "Several commands may be sent without waiting for each reply.",
        "8BITMIME" => "Accepts 8-bit message content.",
        "SMTPUTF8" => "Accepts international (UTF-8) addresses.",
        "CHUNKING" => "Accepts the message in sized chunks (BDAT).",
        "DSN" => "Can send delivery status notifications on request.",
        "ENHANCEDSTATUSCODES" => "Replies carry detailed status codes (like 5.7.8).",
        "REQUIRETLS" => "Can require TLS for the whole delivery path.",
        "BINARYMIME" => "Accepts binary message content.",
        _ => "An extension wasmtp does not use.",
    };
    sentence.into()
}

fn tls_line(text: &str) -> &'static str {
    if text.contains("NOT verified") {
        "Encrypted, but the certificate was not verified: anyone on the path could have presented it, so wasmtp sends no credentials here."
    } else if text.contains("established") {
        "The connection is encrypted from here on; the certificate was verified."
    } else if text.contains("refused") {
        "TLS was refused; the dialog continues without encryption."
    } else {
        "A TLS event."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_starttls_dialog_is_explained_line_by_line() {
        let mut x = TranscriptExplainer::new();
        let dialog = [
            ("S", "220 mx.example.com ESMTP", "greeting"),
            ("C", "EHLO client.test", "introduces itself"),
            ("S", "250-mx.example.com", "server's name"),
            ("S", "250-SIZE 10240000", "10.2 MB"),
            ("S", "250-AUTH GSSAPI NTLM", "none of them"),
            ("S", "250 STARTTLS", "Offers STARTTLS"),
            ("C", "STARTTLS", "switch this connection to TLS"),
            ("S", "220 2.0.0 Ready to start TLS", "handshake starts"),
            (
                "tls",
                "TLSv1.3 TLS13_AES_256_GCM_SHA384 established, certificate verified",
                "encrypted",
            ),
            ("C", "EHLO client.test", "introduces itself"),
            ("S", "250-mx.example.com", "server's name"),
            ("S", "250 AUTH PLAIN LOGIN", "wasmtp can use PLAIN, LOGIN"),
            ("C", "AUTH PLAIN <redacted>", "AUTH PLAIN"),
            ("S", "535 5.7.8 Authentication failed", "wrong user name or password"),
            ("C", "QUIT", "goodbye"),
            ("S", "221 2.0.0 Bye", "closes the connection"),
        ];
        for (dir, text, expected) in dialog {
            let sentence = x.explain(dir, text);
            assert!(sentence.contains(expected), "{text}: {sentence}");
        }
        let mut x = TranscriptExplainer::new();
        assert!(x.explain("S", "554 go away").contains("refuses the session"));
        assert!(
            x.explain("tls", "TLSv1.3 established, certificate NOT verified (self-signed)")
                .contains("sends no credentials")
        );
    }
}
