//! Arbitrary text through the subject-tag finder and quoted-history stripping, with their
//! invariants. See `checks::tag_quotes`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    postdesk_fuzz::checks::tag_quotes(data);
});
