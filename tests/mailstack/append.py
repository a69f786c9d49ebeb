#!/usr/bin/env python3
"""APPENDs every file in DIR (name order) to ADDRESS's FOLDER over IMAP (stdlib only).

Usage: append.py ADDRESS FOLDER DIR   (password `secret-<localpart>`, STARTTLS with the stack CA)
Used by the end-to-end tests to fill a mailbox before the daemon starts.
"""
import imaplib
import os
import ssl
import sys


def main() -> int:
    address, folder, directory = sys.argv[1], sys.argv[2], sys.argv[3]
    context = ssl.create_default_context(cafile=os.environ["POSTDESK_CA_CERT"])
    imap = imaplib.IMAP4(os.environ.get("POSTDESK_IMAP_HOST", "127.0.0.1"), int(os.environ["POSTDESK_IMAP_PORT"]))
    imap.starttls(ssl_context=context)
    imap.login(address, "secret-" + address.split("@")[0])
    count = 0
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as handle:
            status, detail = imap.append(folder, None, None, handle.read())
        if status != "OK":
            print(f"APPEND {name} failed: {detail}", file=sys.stderr)
            return 1
        count += 1
    imap.logout()
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
