//! A tiny fake SMTP server on 127.0.0.1 for transport tests: a greeting, EHLO with a chosen
//! extension list, AUTH, MAIL/RCPT/DATA, RSET/NOOP/QUIT. The answers to RCPT and AUTH are
//! configurable; what arrives is recorded, with how long each mail's DATA took to arrive and
//! whether its commands came pipelined. One thread per connection; threads end with the test
//! process.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the fake server behaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer to RCPT; `None` means `250 2.1.5 ok`.
    pub rcpt_reply: Option<&'static str>,
    /// Advertise `AUTH PLAIN LOGIN` and answer AUTH with this.
    pub auth_reply: Option<&'static str>,
    /// Accept connections but never say anything (for timeouts).
    pub silent: bool,
    /// Advertise `PIPELINING`.
    pub pipelining: bool,
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Accepted connections.
    pub connections: usize,
    /// Every command line, in order.
    pub commands: Vec<String>,
    /// The DATA of every accepted mail.
    pub messages: Vec<String>,
    /// Per mail: from sending `354` until the closing `.` arrived.
    pub data_waits: Vec<Duration>,
    /// Per `MAIL` command: whether its `DATA` had already arrived with it (pipelined).
    pub pipelined: Vec<bool>,
}

/// A running fake server.
pub struct FakeSmtp {
    /// The port it listens on (on 127.0.0.1).
    pub port: u16,
    /// What it saw so far.
    pub seen: Arc<Mutex<Seen>>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl FakeSmtp {
    /// Starts a server with `behaviour` on a free port.
    pub fn start(behaviour: Behaviour) -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake SMTP server");
        let port = listener.local_addr().expect("local address").port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        let streams = Arc::new(Mutex::new(Vec::new()));
        let accepted = streams.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                shared.lock().expect("lock").connections += 1;
                if let Ok(clone) = stream.try_clone() {
                    accepted.lock().expect("lock").push(clone);
                }
                let (behaviour, seen) = (behaviour.clone(), shared.clone());
                thread::spawn(move || {
                    let _ = serve(stream, &behaviour, &seen);
                });
            }
        });
        FakeSmtp {
            port,
            seen,
            streams,
        }
    }

    /// Closes every connection so far, as a server does after its idle timeout.
    pub fn close_connections(&self) {
        for stream in self.streams.lock().expect("lock").drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn serve(stream: TcpStream, behaviour: &Behaviour, seen: &Mutex<Seen>) -> std::io::Result<()> {
    if behaviour.silent {
        let mut idle = BufReader::new(stream);
        let mut sink = Vec::new();
        let _ = idle.read_until(b'\0', &mut sink);
        return Ok(());
    }
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    out.write_all(b"220 fake.test ESMTP ready\r\n")?;
    let mut line = Vec::new();
    // Replies wait here while more pipelined commands are already in (as Postfix does): a
    // reply per write would itself stall on the client's delayed ACK.
    let mut pending = Vec::new();
    let mut recipients = 0;
    loop {
        if input.buffer().is_empty() && !pending.is_empty() {
            out.write_all(&pending)?;
            pending.clear();
        }
        line.clear();
        // Bytes, not `read_line`: a TLS ClientHello must not end the connection early.
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        seen.lock().expect("lock").commands.push(command.clone());
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => {
                let auth = if behaviour.auth_reply.is_some() {
                    "250-AUTH PLAIN LOGIN\r\n"
                } else {
                    ""
                };
                let pipelining = if behaviour.pipelining {
                    "250-PIPELINING\r\n"
                } else {
                    ""
                };
                format!("250-fake.test\r\n{pipelining}250-8BITMIME\r\n{auth}250 SMTPUTF8\r\n")
            }
            "MAIL" => {
                let rest = String::from_utf8_lossy(input.buffer()).to_ascii_uppercase();
                let pipelined = rest.contains("DATA\r\n");
                seen.lock().expect("lock").pipelined.push(pipelined);
                recipients = 0;
                "250 2.1.0 ok\r\n".to_string()
            }
            "AUTH" => format!("{}\r\n", behaviour.auth_reply.unwrap_or("235 2.7.0 ok")),
            "RCPT" => {
                let reply = behaviour.rcpt_reply.unwrap_or("250 2.1.5 ok");
                if reply.starts_with('2') {
                    recipients += 1;
                }
                format!("{reply}\r\n")
            }
            "DATA" if recipients == 0 => "554 5.5.1 no valid recipients\r\n".to_string(),
            "DATA" => {
                pending.extend_from_slice(b"354 go ahead\r\n");
                out.write_all(&pending)?;
                pending.clear();
                let asked = Instant::now();
                let data = read_data(&mut input)?;
                let mut seen = seen.lock().expect("lock");
                seen.data_waits.push(asked.elapsed());
                seen.messages.push(data);
                "250 2.0.0 queued\r\n".to_string()
            }
            "QUIT" => {
                pending.extend_from_slice(b"221 2.0.0 bye\r\n");
                out.write_all(&pending)?;
                return Ok(());
            }
            _ => "250 2.0.0 ok\r\n".to_string(),
        };
        pending.extend_from_slice(reply.as_bytes());
    }
}

fn read_data(input: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 || line == ".\r\n" {
            return Ok(data);
        }
        data.push_str(&line);
    }
}
