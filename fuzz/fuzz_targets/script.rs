//! The action-script encoding shared by the session targets: the input is
//! server bytes, where 0xFF introduces an action (0xFF 0xFF is a literal
//! 0xFF). Runs of server bytes come out whole, just before the action that
//! ends them, so splits stay where the fuzzer put them.

pub enum Step {
    /// Bytes the server sends.
    Bytes(Vec<u8>),
    /// An action byte; its arguments follow through [`Script::arg`].
    Action(u8),
}

pub struct Script<'a> {
    data: &'a [u8],
    pos: usize,
    /// An action read while a run of bytes was still to be handed out.
    pending: Option<u8>,
}

impl<'a> Script<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Script {
            data,
            pos: 0,
            pending: None,
        }
    }

    pub fn next_step(&mut self) -> Option<Step> {
        if let Some(op) = self.pending.take() {
            return Some(Step::Action(op));
        }
        let mut chunk = Vec::new();
        while let Some(&b) = self.data.get(self.pos) {
            self.pos += 1;
            if b != 0xFF {
                chunk.push(b);
                continue;
            }
            let Some(&op) = self.data.get(self.pos) else {
                // A trailing 0xFF ends the script.
                self.pos = self.data.len();
                break;
            };
            self.pos += 1;
            if op == 0xFF {
                chunk.push(0xFF);
                continue;
            }
            if chunk.is_empty() {
                return Some(Step::Action(op));
            }
            self.pending = Some(op);
            return Some(Step::Bytes(chunk));
        }
        (!chunk.is_empty()).then_some(Step::Bytes(chunk))
    }

    /// The next argument byte (0 past the end).
    pub fn arg(&mut self) -> u8 {
        let a = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        a
    }

    /// A wait from one argument byte: 0–12.7 s in 100 ms steps, then up to
    /// about 21 minutes in 10 s steps (past every time-out).
    pub fn wait_ms(&mut self) -> u64 {
        let n = u64::from(self.arg());
        if n < 128 { n * 100 } else { (n - 128) * 10_000 }
    }
}
