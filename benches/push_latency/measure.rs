//! What push_latency measures with: a minimal SMTP client that stamps the moment the server
//! answers `250` to a mail's DATA, polling helpers, and the percentile table.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// One plain SMTP connection, kept open: `MAIL`/`RCPT`/`DATA` pipelined in one write, the
/// body in another, no Nagle delay. [`Smtp::send`] returns when the server said `250`.
pub struct Smtp {
    out: TcpStream,
    input: BufReader<TcpStream>,
}

impl Smtp {
    pub fn connect(port: u16) -> Smtp {
        let out = TcpStream::connect(("127.0.0.1", port)).expect("connect SMTP");
        out.set_nodelay(true).expect("TCP_NODELAY");
        out.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let input = BufReader::new(out.try_clone().expect("clone"));
        let mut smtp = Smtp { out, input };
        smtp.expect("220");
        smtp.write("EHLO bench.example.com\r\n");
        let ehlo = smtp.expect("250");
        assert!(
            ehlo.contains("PIPELINING"),
            "the stack's Postfix offers PIPELINING: {ehlo}"
        );
        smtp
    }

    fn write(&mut self, text: &str) {
        self.out.write_all(text.as_bytes()).expect("SMTP write");
    }

    /// Reads one (multi-line) reply and checks its code.
    fn expect(&mut self, code: &str) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let n = self.input.read_line(&mut line).expect("SMTP read");
            assert!(n > 0, "SMTP server closed the connection");
            reply.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        assert!(reply.starts_with(code), "expected {code}, got {reply}");
        reply
    }

    /// Sends one mail; the instant the server accepted it.
    pub fn send(&mut self, from: &str, to: &str, raw: &str) -> Instant {
        self.write(&format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n"));
        self.expect("250");
        self.expect("250");
        self.expect("354");
        let body = postdesk::outbound::smtp::dot_stuffed(raw.as_bytes());
        self.out.write_all(&body).expect("SMTP write");
        self.expect("250");
        Instant::now()
    }
}

/// A customer mail with a unique Message-ID.
pub fn customer_mail(from: &str, to: &str, subject: &str, id: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@c.example>\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nLatency sample {id}.\r\n"
    )
}

/// Polls `done` every `every` until it holds; the time since `since`, or `None` after 30 s.
pub fn time_until(since: Instant, every: Duration, mut done: impl FnMut() -> bool) -> Option<f64> {
    let deadline = since + Duration::from_secs(30);
    loop {
        if done() {
            return Some(ms(since.elapsed()));
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Tickets in the database, through a fresh read-only connection (it never checkpoints and
/// never creates files, so it changes nothing for the processes that write).
pub fn ticket_count(db: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// One row of the table: latencies in milliseconds.
pub struct Stats {
    pub name: &'static str,
    pub samples: Vec<f64>,
    pub missed: usize,
}

impl Stats {
    pub fn new(name: &'static str) -> Stats {
        Stats {
            name,
            samples: Vec::new(),
            missed: 0,
        }
    }

    pub fn add(&mut self, sample: Option<f64>) {
        match sample {
            Some(ms) => self.samples.push(ms),
            None => self.missed += 1,
        }
    }

    /// Nearest-rank percentile.
    pub fn percentile(&self, p: usize) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        sorted[((sorted.len() * p).div_ceil(100)).clamp(1, sorted.len()) - 1]
    }

    pub fn print(&self) {
        let missed = if self.missed > 0 {
            format!("  ({} missed the 30 s limit)", self.missed)
        } else {
            String::new()
        };
        println!(
            "| {:<52} | {:>4} | {:>6.0} | {:>6.0} | {:>6.0} | {:>6.0} |{missed}",
            self.name,
            self.samples.len(),
            self.percentile(50),
            self.percentile(95),
            self.percentile(99),
            self.percentile(100),
        );
    }
}

pub fn print_table(title: &str, rows: &[&Stats]) {
    println!("\n{title}\n");
    println!(
        "| {:<52} | {:>4} | {:>6} | {:>6} | {:>6} | {:>6} |",
        "path (ms)", "n", "p50", "p95", "p99", "max"
    );
    println!(
        "|{:-<54}|{:->6}|{:->8}|{:->8}|{:->8}|{:->8}|",
        "", "", "", "", "", ""
    );
    for row in rows {
        row.print();
    }
}
