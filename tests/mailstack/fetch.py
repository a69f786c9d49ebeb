#!/usr/bin/env python3
"""Prints every message of one test user's IMAP mailbox as JSON (stdlib only).

Usage: fetch.py ADDRESS [MAILBOX [headers]]   (password `secret-<localpart>`, STARTTLS with
the stack CA)
Output: a JSON array of {"raw": "<message text>"} in UID order; with `headers`, only each
message's header block, fetched in one round trip (for counting thousands of mails). Used by
the Rust end-to-end tests to read what a customer or agent really received.
"""
import imaplib
import json
import os
import ssl
import sys


def main() -> int:
    address = sys.argv[1]
    mailbox = sys.argv[2] if len(sys.argv) > 2 else "INBOX"
    headers_only = len(sys.argv) > 3 and sys.argv[3] == "headers"
    host = os.environ.get("POSTDESK_IMAP_HOST", "127.0.0.1")
    port = int(os.environ["POSTDESK_IMAP_PORT"])
    context = ssl.create_default_context(cafile=os.environ["POSTDESK_CA_CERT"])
    imap = imaplib.IMAP4(host, port)
    imap.starttls(ssl_context=context)
    imap.login(address, "secret-" + address.split("@")[0])
    status, _ = imap.select(mailbox, readonly=True)
    if status != "OK":
        print("[]")
        return 0
    messages = []
    if headers_only:
        _, parts = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER])")
        for part in parts:
            if isinstance(part, tuple):
                messages.append({"raw": part[1].decode("utf-8", "replace")})
        imap.logout()
        print(json.dumps(messages))
        return 0
    _, data = imap.uid("SEARCH", None, "ALL")
    for uid in data[0].split():
        _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
        for part in parts:
            if isinstance(part, tuple):
                messages.append({"raw": part[1].decode("utf-8", "replace")})
    imap.logout()
    print(json.dumps(messages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
