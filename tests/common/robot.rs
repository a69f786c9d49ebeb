//! The scripted autoresponder (tests/mailstack/robot.py) run against a stack, and the outbox
//! counts its tests check.

use std::process::{Child, Command, Stdio};

use super::mailstack::Stack;
use super::Scratch;

/// What the robot saw and did.
pub struct RobotRun {
    /// Unix times at which a mail from support@ reached the robot.
    pub received: Vec<f64>,
    /// The Message-IDs of those mails, in the same order.
    pub message_ids: Vec<String>,
    /// How many mails the robot wrote back.
    pub sent: usize,
    /// When the run ended (Unix time).
    pub ended: f64,
}

/// Starts the robot for `address` on `stack` for `seconds`, in `mode` (`human` or
/// `autoreply`), and opens the exchange: once it is watching its mailbox, it sends support@
/// one ordinary request (`subject`, `body`); every answer it gets then makes it write again.
pub fn run_robot(
    stack: &Stack,
    address: &str,
    seconds: u32,
    mode: &str,
    (subject, body): (&str, &str),
) -> Child {
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mailstack/robot.py");
    let child = Command::new("python3")
        .arg(script)
        .arg(address)
        .arg(seconds.to_string())
        .arg(mode)
        .envs(stack.env.iter().cloned())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run robot.py");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let message_id = format!("{}@robot.example", super::mailstack::nonce());
    stack.send(
        address,
        "support@example.com",
        &super::mail(address, subject, &message_id, "", body),
    );
    child
}

/// Waits for the robot to finish and reads its report.
pub fn robot_result(child: Child) -> RobotRun {
    let output = child.wait_with_output().expect("robot.py");
    assert!(output.status.success(), "robot.py failed");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("robot JSON");
    let received = value["received"].as_array().expect("received");
    RobotRun {
        received: received.iter().filter_map(|r| r["at"].as_f64()).collect(),
        message_ids: received
            .iter()
            .map(|r| r["message_id"].as_str().unwrap_or("").to_string())
            .collect(),
        sent: value["sent"].as_u64().expect("sent") as usize,
        ended: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    }
}

/// Counts of automatic outbox rows to `address` with `status`, read from the daemon's
/// database.
pub fn outbox_to(scratch: &Scratch, address: &str, status: &str) -> i64 {
    let db = rusqlite::Connection::open(scratch.path("var/postdesk.db")).expect("open db");
    db.query_row(
        "SELECT count(*) FROM outbox WHERE recipient_email = ?1 AND status = ?2 AND automatic = 1",
        rusqlite::params![address, status],
        |row| row.get(0),
    )
    .expect("count outbox")
}
