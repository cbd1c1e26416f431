//! One message's journey through a connection: envelope, recipients, body,
//! final reply, and what is known about it when something fails.

use crate::body::{BodyEncoder, Framing};
use crate::envelope::{Envelope, EnvelopeCommands};
use crate::error::{Phase, SmtpError};
use crate::event::{Delivery, MessageId, RejectedRecipient};
use crate::reply::Reply;

use super::outcome::{data_error, eight_bit_in_seven_bit_body, lmtp_data_error, queue_id};

/// The next thing this transaction puts on the wire, or why it puts
/// nothing more there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Mail,
    Rcpt(usize),
    /// Every RCPT sent: DATA next (or BDAT chunks).
    AfterRcpts,
    /// DATA sent, waiting for 354.
    AwaitGo,
    /// Streaming the body: after the 354 to DATA, or at once with BDAT.
    Body,
    /// The end of data (or BDAT LAST) went out: from here a lost link
    /// means "unknown".
    EndSent,
    /// Sending stopped before the end of data: the message failed.
    Stopped,
}

impl Step {
    /// Nothing more of this transaction will be sent.
    pub fn wire_ended(self) -> bool {
        matches!(self, Step::EndSent | Step::Stopped)
    }
}

/// What the server answered to MAIL FROM.
#[derive(Debug, Clone)]
pub(super) enum MailAnswer {
    Awaited,
    Accepted,
    /// Refused: the message failed.
    Refused,
    /// 503 (the server still held another transaction) after the end of
    /// data was out: the final reply decides between `unknown` and
    /// `not-sent`, never a delivery.
    IntoOpenTransaction(Reply),
}

/// What the caller was told about the message.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    /// Nothing yet.
    Pending,
    /// `Event::Failed` was emitted with this error.
    Failed(SmtpError),
    /// `Event::Delivered` was emitted.
    Delivered,
}

impl Outcome {
    pub fn is_pending(&self) -> bool {
        matches!(self, Outcome::Pending)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

pub(super) struct Transaction {
    pub id: MessageId,
    pub envelope: Envelope,
    pub commands: Option<EnvelopeCommands>,
    pub step: Step,
    /// Replies still expected for this transaction.
    pub outstanding: usize,
    pub mail: MailAnswer,
    /// RCPT replies by recipient index, in the order received (which is the order sent).
    pub rcpt_replies: Vec<(usize, Reply)>,
    pub final_replies: Vec<Reply>,
    pub encoder: BodyEncoder,
    /// Body bytes from the caller not yet framed (waiting for 354 or the wire).
    pub raw: Vec<u8>,
    /// Framed BDAT bytes not yet sent.
    pub chunk: Vec<u8>,
    /// The caller ended the body (`end_body`).
    pub caller_done: bool,
    pub outcome: Outcome,
}

impl Transaction {
    pub fn new(id: MessageId, envelope: Envelope, max_line_len: Option<usize>) -> Self {
        Transaction {
            id,
            envelope,
            commands: None,
            step: Step::Mail,
            outstanding: 0,
            mail: MailAnswer::Awaited,
            rcpt_replies: Vec::new(),
            final_replies: Vec::new(),
            encoder: BodyEncoder::with_line_limit(Framing::Data, max_line_len),
            raw: Vec::new(),
            chunk: Vec::new(),
            caller_done: false,
            outcome: Outcome::Pending,
        }
    }

    /// Indexes of the recipients the server accepted, in RCPT order.
    pub fn accepted_indexes(&self) -> Vec<usize> {
        self.rcpt_replies
            .iter()
            .filter(|(_, r)| r.is_positive())
            .map(|(i, _)| *i)
            .collect()
    }

    fn rejected_at_rcpt(&self) -> Vec<RejectedRecipient> {
        self.rcpt_replies
            .iter()
            .filter(|(_, r)| !r.is_positive())
            .map(|(i, r)| RejectedRecipient {
                address: self.envelope.recipients[*i].address.clone(),
                reply: r.clone(),
            })
            .collect()
    }

    /// The phase this transaction was in, for errors that end it.
    pub fn phase(&self) -> Phase {
        // Judged by the replies received, not by what was sent: with
        // pipelining MAIL, RCPT and DATA may all be out while MAIL's reply
        // is still awaited, and the error belongs to the first one unanswered.
        if !matches!(self.mail, MailAnswer::Accepted) {
            Phase::Mail
        } else if self.rcpt_replies.len() < self.envelope.recipients.len() {
            Phase::Rcpt
        } else {
            Phase::Data
        }
    }

    /// The 503 to MAIL, when this message's data may have joined another
    /// transaction the server still held.
    pub fn joined_open_transaction(&self) -> Option<&Reply> {
        match &self.mail {
            MailAnswer::IntoOpenTransaction(reply) => Some(reply),
            _ => None,
        }
    }

    /// The body was declared 7-bit and carried 8-bit bytes.
    pub fn seven_bit_violation(&self) -> Option<SmtpError> {
        let seven_bit = self.commands.as_ref().is_some_and(|c| c.seven_bit_only);
        (seven_bit && self.encoder.saw_8bit()).then(eight_bit_in_seven_bit_body)
    }

    /// The result once every final reply is in: SMTP has one, LMTP one per
    /// accepted recipient (paired in RCPT order, RFC 2033 §4.2).
    pub fn final_outcome(&self, lmtp: bool) -> Result<Delivery, SmtpError> {
        let accepted = self.accepted_indexes();
        let mut rejected = self.rejected_at_rcpt();
        let Some(first) = self.final_replies.first() else {
            return Err(SmtpError::protocol(Phase::Data, "no final reply was received."));
        };
        if !lmtp || accepted.is_empty() {
            if !first.is_positive() || accepted.is_empty() {
                return Err(data_error(first, "the server refused the message after its data"));
            }
            return Ok(Delivery {
                accepted: accepted
                    .iter()
                    .map(|i| self.envelope.recipients[*i].address.clone())
                    .collect(),
                rejected,
                reply: first.clone(),
                queue_id: queue_id(first),
            });
        }
        let mut delivered = Vec::new();
        let mut success_reply = None;
        for (index, reply) in accepted.iter().zip(&self.final_replies) {
            let address = self.envelope.recipients[*index].address.clone();
            if reply.is_positive() {
                delivered.push(address);
                success_reply.get_or_insert(reply);
            } else {
                rejected.push(RejectedRecipient {
                    address,
                    reply: reply.clone(),
                });
            }
        }
        match success_reply {
            Some(reply) => Ok(Delivery {
                accepted: delivered,
                rejected,
                reply: reply.clone(),
                queue_id: queue_id(reply),
            }),
            None => {
                let failures: Vec<(&str, &Reply)> = accepted
                    .iter()
                    .zip(&self.final_replies)
                    .map(|(i, r)| (self.envelope.recipients[*i].address.as_str(), r))
                    .collect();
                Err(lmtp_data_error(&failures))
            }
        }
    }
}
