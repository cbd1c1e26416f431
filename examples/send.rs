//! Sends one message with the native driver, the way `swaks` would.
//!
//! ```text
//! cargo run --example send -- --host 127.0.0.1 --port 587 --security starttls \
//!     --ca ca.pem --user demo --pass-env DEMO_PASS \
//!     --from 'Demo <demo@example.com>' --to friend@example.org \
//!     --subject 'Hello' --text 'It arrived.' -v
//! ```

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtp::connection::connect_error;
use wasmtp::driver::{Client, TranscriptSink};
use wasmtp::mime::{MessageBuilder, MessageSpec};
use wasmtp::tls_engine::TlsOptions;
use wasmtp::{Config, Credentials, Phase, Security, SmtpError};

struct Args {
    host: String,
    port: Option<u16>,
    security: Option<Security>,
    ca: Option<String>,
    user: Option<String>,
    pass_env: Option<String>,
    from: String,
    to: Vec<String>,
    subject: String,
    text: String,
    verbose: bool,
    allow_insecure_auth: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: String::new(),
        port: None,
        security: None,
        ca: None,
        user: None,
        pass_env: None,
        from: String::new(),
        to: Vec::new(),
        subject: String::new(),
        text: String::new(),
        verbose: false,
        allow_insecure_auth: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => args.host = value()?,
            "--port" => args.port = Some(value()?.parse().map_err(|_| "--port takes a number")?),
            "--security" => {
                args.security = Some(match value()?.as_str() {
                    "tls" => Security::Tls,
                    "starttls" => Security::StartTls,
                    "opportunistic" => Security::Opportunistic,
                    "none" => Security::None,
                    other => return Err(format!("unknown security mode {other}")),
                })
            }
            "--ca" => args.ca = Some(value()?),
            "--user" => args.user = Some(value()?),
            "--pass-env" => args.pass_env = Some(value()?),
            "--from" => args.from = value()?,
            "--to" => args.to.push(value()?),
            "--subject" => args.subject = value()?,
            "--text" => args.text = value()?,
            "--allow-insecure-auth" => args.allow_insecure_auth = true,
            "-v" | "--verbose" => args.verbose = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.host.is_empty() || args.from.is_empty() || args.to.is_empty() {
        return Err("--host, --from and --to are required".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("usage error: {e}");
            return ExitCode::from(2);
        }
    };
    match smol::block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error {}: {}", err.code, err.message);
            if let Some(hint) = &err.hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), SmtpError> {
    let security = args
        .security
        .unwrap_or_else(|| Security::default_for_port(args.port.unwrap_or(587)));
    let port = args.port.unwrap_or(security.default_port());
    let mut config = Config::new(args.host.clone(), port)
        .security(security)
        .allow_insecure_auth(args.allow_insecure_auth);
    if let Some(user) = args.user.clone() {
        let var = args.pass_env.as_deref().unwrap_or("SMTP_PASS");
        let pass = std::env::var(var).map_err(|_| {
            SmtpError::input(
                Phase::Auth,
                format!("--user was given but the environment variable {var} holds no password."),
            )
        })?;
        config = config.credentials(Credentials::Password { user, pass });
    }
    let tls = match &args.ca {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| SmtpError::input(Phase::Tls, format!("cannot read {path}: {e}")))?;
            TlsOptions {
                ca_pem: vec![pem],
                ..TlsOptions::default()
            }
        }
        None => TlsOptions::default(),
    };

    // The crate's MIME builder writes the headers (Date, Message-ID, encoded
    // Subject) and the envelope (every recipient once).
    let mut random = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut random)
        .map_err(|_| SmtpError::input(Phase::Data, "no random bytes from the operating system"))?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let spec = MessageSpec {
        from: args.from.clone(),
        to: args.to.clone(),
        subject: Some(args.subject.clone()),
        text: Some(args.text.clone()),
        ..MessageSpec::default()
    };
    let builder = MessageBuilder::new(spec, random, now_ms)?;
    let mut envelope = builder.envelope().clone();
    let message = builder.into_vec()?;
    envelope.size = Some(message.len() as u64);

    let stream = smol::net::TcpStream::connect((args.host.as_str(), port))
        .await
        .map_err(|e| connect_error(&args.host, port, &e.to_string()))?;
    stream.set_nodelay(true).ok();
    let transcript: Option<TranscriptSink> = if args.verbose {
        Some(Box::new(|line: &wasmtp::TranscriptLine| {
            eprintln!("{:>3}: {}", line.dir.as_str(), line.text)
        }))
    } else {
        None
    };
    let mut client = Client::connect_tls_with_transcript(stream, config, tls, transcript).await?;
    let delivery = client.send(envelope, smol::io::Cursor::new(message)).await?;
    println!("accepted: {}", delivery.accepted.join(", "));
    for rejected in &delivery.rejected {
        println!("rejected: {} ({})", rejected.address, rejected.reply);
    }
    println!("server said: {}", delivery.reply);
    if let Some(id) = &delivery.queue_id {
        println!("queue id: {id}");
    }
    client.quit().await
}
