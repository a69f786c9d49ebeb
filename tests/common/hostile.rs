//! Hostile customer mail for the tracking page tests: markup, script, `javascript:` links and
//! right-to-left / zero-width tricks in the subject, the name, the body and attachment names.
//! Every script in here would set `document.title` to something starting with `pwned`, so a
//! browser test can tell whether any of it ran.

/// The customer's first mail: plain text with two attachments.
pub fn hostile_mail(from_address: &str) -> Vec<u8> {
    format!(
        "From: \"<script>document.title='pwned-name'</script> Eve\u{202E}evE\" <{from_address}>\r\n\
         To: Example Support <support@example.com>\r\n\
         Subject: <script>document.title='pwned-subject'</script> \"><img src=x onerror=\"document.title='pwned-img'\"> \u{202E}fdp.exe zero\u{200B}width\r\n\
         Message-ID: <hostile-1@attacker.example>\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hello <script>document.title='pwned-body'</script>\r\n\
         Click <a href=\"javascript:document.title='pwned-link'\">here</a> or javascript:document.title='pwned-js'\r\n\
         A real link: https://example.com/help?a=1&b=2.\r\n\
         A tricky one: http://example.com/\"><script>document.title='pwned-href'</script>\r\n\
         Reversed: \u{202E}moc.elgoog//:sptth and zero\u{200B}width and \u{2066}isolate\u{2069} end\r\n\
         --b1\r\n\
         Content-Type: text/plain\r\n\
         Content-Disposition: attachment; filename*=UTF-8''%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%284%29%3E.txt\r\n\
         \r\n\
         just text\r\n\
         --b1\r\n\
         Content-Type: text/html\r\n\
         Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AElmth.txt\r\n\
         \r\n\
         <script>document.title='pwned-attachment'</script>\r\n\
         --b1--\r\n"
    )
    .into_bytes()
}

/// A reply in HTML only, with script and event handlers in the markup.
pub fn hostile_html_reply(from_address: &str, tracking_id: &str) -> Vec<u8> {
    format!(
        "From: <{from_address}>\r\n\
         To: Example Support <support@example.com>\r\n\
         Subject: Re: [#{tracking_id}] more\r\n\
         Message-ID: <hostile-2@attacker.example>\r\n\
         Date: Sun, 22 Nov 2026 10:05:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         \r\n\
         <html><body><p>Second <b>try</b><script>document.title='pwned-html'</script></p>\
         <img src=x onerror=\"document.title='pwned-html-img'\">\
         <a href=\"javascript:document.title='pwned-html-link'\">click</a>\
         <svg onload=\"document.title='pwned-svg'\"></svg></p></body></html>\r\n"
    )
    .into_bytes()
}

/// The live markup from the hostile mails found in `html` (escaped text does not count).
pub fn has_live_markup(html: &str) -> Vec<&'static str> {
    [
        "<script",
        "<img",
        "<svg",
        "<a href=\"javascript",
        "<a href='javascript",
        "\u{202E}",
    ]
    .into_iter()
    .filter(|needle| html.contains(needle))
    .collect()
}
