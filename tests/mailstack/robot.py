#!/usr/bin/env python3
"""A scripted autoresponder on the test stack (stdlib only).

Usage: robot.py ADDRESS SECONDS MODE
  ADDRESS  the robot's address, e.g. customer2+robot1@example.com (it reads the INBOX of the
           user before the `+`, password `secret-<user>`, and only mail addressed To ADDRESS)
  MODE     human: answers every new mail from support@example.com with a fresh mail to
                  support@ with a new subject and no auto-reply headers (a robot that looks
                  like a person, the worst case for loop protection);
           autoreply: answers like a help desk, with `Auto-Submitted: auto-replied`.
It polls every 200 ms for SECONDS and prints JSON: {"received": [{"at": unix time,
"subject": ..., "message_id": ...}], "sent": N}.
"""
import email
import email.utils
import imaplib
import json
import os
import smtplib
import ssl
import sys
import time


def main() -> int:
    address, seconds, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    user = address.split("+")[0].split("@")[0]
    login = f"{user}@{address.split('@')[1]}"
    host = os.environ.get("POSTDESK_IMAP_HOST", "127.0.0.1")
    context = ssl.create_default_context(cafile=os.environ["POSTDESK_CA_CERT"])
    imap = imaplib.IMAP4(host, int(os.environ["POSTDESK_IMAP_PORT"]))
    imap.starttls(ssl_context=context)
    imap.login(login, "secret-" + user)
    imap.select("INBOX", readonly=True)
    smtp_port = int(os.environ["POSTDESK_SMTP_PORT"])
    answered = set()
    received = []
    sent = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        imap.noop()
        _, data = imap.uid("SEARCH", None, "TO", f'"{address}"', "FROM", '"support@example.com"')
        for uid in data[0].split():
            if uid in answered:
                continue
            answered.add(uid)
            _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[HEADER])")
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            head = email.message_from_bytes(raw)
            received.append({
                "at": time.time(),
                "subject": str(head.get("Subject", "")),
                "message_id": str(head.get("Message-ID", "")).strip(),
            })
            sent += 1
            if mode == "human":
                subject = f"Question number {sent} from {address}"
                extra = ""
            else:
                subject = f"[#ROBOT-{sent}] We received your message"
                extra = "Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n"
            reply = (
                f"From: {address}\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
                f"Message-ID: {email.utils.make_msgid(domain='robot.example')}\r\n"
                f"Date: {email.utils.formatdate()}\r\n{extra}"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                f"Thanks for your mail. This is answer {sent}.\r\n"
            )
            with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
                smtp.sendmail(address, ["support@example.com"], reply.encode())
        time.sleep(0.2)
    imap.logout()
    print(json.dumps({"received": received, "sent": sent}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
