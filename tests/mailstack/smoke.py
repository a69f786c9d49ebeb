#!/usr/bin/env python3
"""Smoke test of the mail stack from tests/mailstack/start.sh (python3 stdlib only).

Usage: eval "$(tests/mailstack/start.sh)"; python3 tests/mailstack/smoke.py
Reads the POSTDESK_* variables that start.sh exports. Exits non-zero on the first failure.
"""
import imaplib
import os
import re
import smtplib
import socket
import ssl
import sys
import time
import uuid
from email.message import EmailMessage

HOST = os.environ.get("POSTDESK_IMAP_HOST", "127.0.0.1")
IMAP_PORT = int(os.environ["POSTDESK_IMAP_PORT"])
IMAPS_PORT = int(os.environ["POSTDESK_IMAPS_PORT"])
SMTP_PORT = int(os.environ["POSTDESK_SMTP_PORT"])
CA = os.environ["POSTDESK_CA_CERT"]
DIR = os.environ["POSTDESK_MAILSTACK_DIR"]
USERS = ["support", "customer1", "customer2", "agent1", "agent2"]

CTX = ssl.create_default_context(cafile=CA)  # verifies the chain and the host name


def ok(msg):
    print(f"ok   {msg}", flush=True)


def fail(msg):
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


def check(cond, msg):
    if cond:
        ok(msg)
    else:
        fail(msg)


def addr(user):
    return f"{user}@example.com"


def login(user, how="plain", host=HOST, password=None):
    if how == "imaps":
        m = imaplib.IMAP4_SSL(host, IMAPS_PORT, ssl_context=CTX, timeout=10)
    else:
        m = imaplib.IMAP4(host, IMAP_PORT, timeout=10)
        if how == "starttls":
            m.starttls(ssl_context=CTX)
    m.login(addr(user), password if password is not None else f"secret-{user}")
    return m


def find(m, msgid, mailbox="INBOX"):
    m.select(mailbox)
    typ, data = m.uid("SEARCH", "HEADER", "Message-ID", msgid)
    assert typ == "OK", data
    return data[0].split()


def wait_for(user, msgid, timeout=10.0, how="plain"):
    t0 = time.monotonic()
    m = login(user, how)
    try:
        while True:
            uids = find(m, msgid)
            if uids:
                return time.monotonic() - t0, m, uids
            if time.monotonic() - t0 > timeout:
                return None, m, []
            time.sleep(0.1)
    except BaseException:
        m.logout()
        raise


def new_msg(frm, to, subject, body="hello\n"):
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@smoke.test>"
    msg["Date"] = "Mon, 01 Jan 2024 00:00:00 +0000"
    msg.set_content(body)
    return msg


def smtp(tls=False):
    s = smtplib.SMTP(HOST, SMTP_PORT, timeout=10)
    s.ehlo("smoke.test")
    if tls:
        s.starttls(context=CTX)
        s.ehlo("smoke.test")
    return s


def main():
    # --- SMTP: plain and STARTTLS, size limit, SMTPUTF8 -------------------------------
    s = smtp()
    check(s.has_extn("starttls"), "SMTP offers STARTTLS")
    check(not s.has_extn("smtputf8"), "SMTP does not offer SMTPUTF8 (Dovecot 2.3 LMTP lacks it)")
    check(s.has_extn("8bitmime"), "SMTP offers 8BITMIME")
    size = int(s.esmtp_features.get("size", "0"))
    check(size >= 40 * 1024 * 1024, f"SMTP SIZE {size} >= 40 MiB")
    plain = new_msg(addr("customer2"), addr("customer1"), "plain smtp")
    s.send_message(plain)
    try:
        s.sendmail(addr("customer2"), ["nobody@example.com"], plain.as_bytes())
        fail("unknown local user accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code = e.recipients["nobody@example.com"][0]
        check(code == 550, f"unknown user nobody@example.com rejected at RCPT ({code})")
    s.quit()

    s = smtp(tls=True)
    check(s.sock.version() is not None, f"SMTP STARTTLS ({s.sock.version()}, CA verified)")
    tls_msg = new_msg(addr("customer2"), addr("customer1"), "over starttls")
    s.send_message(tls_msg)
    # raw 8-bit UTF-8 headers (RFC 6532) without SMTPUTF8: delivered unchanged
    utf8 = {"Message-ID": f"<{uuid.uuid4().hex}@smoke.test>"}
    raw = ("From: Клієнт <customer2@example.com>\r\nTo: support@example.com\r\n"
           "Subject: Заявка: принтер не друкує\r\n"
           f"Message-ID: {utf8['Message-ID']}\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
           "\r\nДобрий день!\r\n").encode()
    s.sendmail(addr("customer2"), [addr("support")], raw, mail_options=["BODY=8BITMIME"])
    try:
        s.sendmail(addr("customer2"), [addr("support")], raw, mail_options=["SMTPUTF8"])
        fail("SMTPUTF8 request accepted")
    except smtplib.SMTPNotSupportedError:
        ok("an SMTPUTF8 request is refused at submission (no silent bounce)")
    plus = new_msg(addr("customer2"), "support+billing@example.com", "plus address")
    s.send_message(plus)
    s.quit()

    # --- delivery into customer1's INBOX, over all three IMAP flavours -----------------
    for how, msg in (("plain", plain), ("starttls", tls_msg), ("imaps", plain)):
        dt, m, uids = wait_for("customer1", msg["Message-ID"], how=how)
        check(dt is not None, f"IMAP {how}: mail in customer1's INBOX after {dt or 0:.2f}s")
        typ, caps = m.capability()
        caps = caps[0].decode().upper().split()
        check("IDLE" in caps and "MOVE" in caps, f"IMAP {how}: IDLE and MOVE in CAPABILITY after login")
        m.logout()
    m = login("customer1", "imaps", host="localhost")
    ok("IMAPS with host name 'localhost' verified")
    m.logout()
    m = login("customer1", "starttls", host="localhost")
    ok("IMAP STARTTLS with host name 'localhost' verified")
    m.logout()

    dt, m, uids = wait_for("support", utf8["Message-ID"])
    check(dt is not None, "mail with raw UTF-8 headers delivered to support")
    typ, data = m.uid("FETCH", uids[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    check("принтер".encode() in data[0][1], "UTF-8 Subject arrives as raw UTF-8")
    m.logout()
    dt, m, uids = wait_for("support", plus["Message-ID"])
    check(dt is not None, "support+billing@example.com delivered to support's INBOX")
    m.logout()

    # --- wrong password fails fast, repeatedly, and a right one still works ------------
    attempts = [("agent1", "wrong")] * 4 + [("agent1", "secret-support"), ("agent1", "secret-"),
                                            ("ghost", "secret-ghost")]
    for i, (user, password) in enumerate(attempts):
        t0 = time.monotonic()
        try:
            login(user, password=password)
            fail(f"login {user} / {password} accepted")
        except imaplib.IMAP4.error:
            pass
        dt = time.monotonic() - t0
        check(dt < 1.0, f"bad login #{i + 1} ({user} / {password}) rejected in {dt:.3f}s")
    t0 = time.monotonic()
    login("agent1").logout()
    dt = time.monotonic() - t0
    check(dt < 1.0, f"right password right after failures accepted in {dt:.3f}s")

    # --- IDLE: EXISTS arrives shortly after delivery -----------------------------------
    m = login("agent2")
    m.select("INBOX")
    tag = b"I1"
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    check(line.startswith(b"+"), "IDLE accepted")
    idle_msg = new_msg(addr("customer1"), addr("agent2"), "idle")
    t0 = time.monotonic()
    s = smtp()
    s.send_message(idle_msg)
    s.quit()
    m.sock.settimeout(10)
    got = None
    while time.monotonic() - t0 < 10:
        line = m.readline()
        if re.match(rb"\* \d+ EXISTS", line):
            got = time.monotonic() - t0
            break
    check(got is not None, f"IDLE: EXISTS {got or 0:.2f}s after SMTP submission")
    m.send(b"DONE\r\n")
    while not m.readline().startswith(tag):
        pass
    m.logout()

    # --- outside domains: refused at RCPT by the error transport, never queued ----------
    out = new_msg(addr("customer2"), "user@outside.test", "must not leave")
    s = smtp()
    try:
        s.send_message(out)
        fail("mail to user@outside.test accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["user@outside.test"]
        check(code == 550 and b"no outside mail in tests" in text,
              f"user@outside.test refused at RCPT: {code} {text.decode()}")
    # one local and one outside recipient: the local copy is delivered, the outside refused
    mixed = new_msg(addr("customer2"), "customer1@example.com, user@outside.test", "mixed")
    refused = s.send_message(mixed)
    check(list(refused) == ["user@outside.test"], "mixed recipients: only the outside one refused")
    s.quit()
    dt, m, uids = wait_for("customer1", mixed["Message-ID"])
    check(dt is not None, "mixed recipients: local copy delivered")
    m.logout()
    for u in USERS:
        m = login(u)
        check(not find(m, out["Message-ID"]), f"outside mail not in {u}'s INBOX")
        m.logout()
    log = open(os.path.join(DIR, "postfix.log"), encoding="utf-8", errors="replace").read()
    check("outside.test" not in re.sub(r".*: reject: RCPT from .*", "", log),
          "postfix.log: outside.test only in RCPT rejections (never queued)")
    check(not re.search(r"postfix-pdms/(smtp|relay)\[", log), "postfix.log: no smtp client ever ran")
    check("connect to" not in log, "postfix.log: no outgoing connection attempt")

    # --- a 26 MiB message goes through -------------------------------------------------
    big = new_msg(addr("customer2"), addr("support"), "big", "x" * 76 + "\n")
    big.add_attachment(os.urandom(19 * 1024 * 1024), maintype="application",
                       subtype="octet-stream", filename="big.bin")  # ~26 MiB after base64
    raw = big.as_bytes()
    t0 = time.monotonic()
    s = smtp()
    s.sendmail(addr("customer2"), [addr("support")], raw)
    s.quit()
    dt, m, uids = wait_for("support", big["Message-ID"], timeout=20)
    check(dt is not None, f"{len(raw) / 2**20:.1f} MiB mail delivered in {time.monotonic() - t0:.2f}s")
    m.logout()

    print("smoke: all checks passed")


if __name__ == "__main__":
    socket.setdefaulttimeout(15)
    main()
