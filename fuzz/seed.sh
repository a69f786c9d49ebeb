#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets (fuzz/corpus/, not in git):
#   parse_route  every fixture mail (fixtures/*.eml, fixtures/fuzz/parse_route/*) and every
#                message of the shared corpus (../shared/corpus, without its .yml/README)
#   tag_quotes   the Subject lines of all those mails, the decoded texts of the golden
#                fixtures (fixtures/*.json), fixtures/fuzz/tag_quotes/*, and a few
#                attribution and separator lines
# Re-running it adds missing seeds and keeps what the fuzzer found. Needs bash, jq optional.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
shared="${POSTDESK_CORPUS:-$repo/../shared/corpus}"
mail_dir="$here/corpus/parse_route"
text_dir="$here/corpus/tag_quotes"
mkdir -p "$mail_dir" "$text_dir"

# Names by content hash, so re-runs and the fuzzer's own files never collide.
add() { # add DIR FILE
    local sum
    sum="$(sha1sum "$2" | cut -c1-40)"
    [ -e "$1/$sum" ] || cp "$2" "$1/$sum"
}
add_text() { # add_text DIR TEXT
    local tmp
    tmp="$(mktemp)"
    printf '%s' "$2" >"$tmp"
    add "$1" "$tmp"
    rm -f "$tmp"
}

mails=()
while IFS= read -r -d '' f; do mails+=("$f"); done < <(
    find "$repo/fixtures" -maxdepth 1 -name '*.eml' -print0
    find "$repo/fixtures/fuzz/parse_route" -type f -print0 2>/dev/null
    if [ -d "$shared" ]; then
        find "$shared" -type f ! -name '*.yml' ! -name 'README.md' ! -name '.*' -print0
    else
        echo "seed.sh: no shared corpus at $shared (set POSTDESK_CORPUS); fixtures only" >&2
    fi
)
for f in "${mails[@]}"; do
    add "$mail_dir" "$f"
    # The Subject header with its folded continuation lines, raw (encoded words and all).
    subject="$(awk '/^\r?$/{exit} /^[Ss][Uu][Bb][Jj][Ee][Cc][Tt]:/{s=1; sub(/^[^:]*:[ \t]*/, ""); printf "%s", $0; next} s && /^[ \t]/{printf "%s", $0; next} {s=0}' "$f" | tr -d '\r')"
    [ -n "$subject" ] && add_text "$text_dir" "$subject"
done

# The decoded text of each golden fixture: what quote stripping really sees.
if command -v jq >/dev/null; then
    for f in "$repo"/fixtures/*.json; do
        text="$(jq -r '.parsed.text // empty' "$f")"
        [ -n "$text" ] && add_text "$text_dir" "$text"
    done
fi
find "$repo/fixtures/fuzz/tag_quotes" -type f -print0 2>/dev/null |
    while IFS= read -r -d '' f; do add "$text_dir" "$f"; done

lines=(
    'Re: [#AZA-DMP-AJ8S] Printer on fire'
    'Re: [# aza - dmp - aj8s ] [not a tag] [#AZA-DMP-AJ8]'
    $'Thanks!\n\nOn Mon, 1 Jan 2024 at 10:00, John Doe <john@example.com> wrote:\n> old text'
    $'Danke\n\nAm 01.01.24 um 10:00 schrieb John Doe <john@example.com>:\n> alt'
    $'Дякую\n\nІван Петров пише:\n> старе'
    $'Спасибо\n\nпн, 1 янв. 2024 г. в 10:00, Иван <i@x.ru>:\n> старое'
    $'Hi\n\n________________________________\nFrom: Support\nSent: Monday\nTo: me\n\nold'
    $'Hi\n\n-----Original Message-----\nFrom: Support\nold'
    $'Hi\n------ Reply above this line ------\nold'
    $'As I wrote:\nthe printer is on fire\n> quoted\n>> deeper\n\n'
)
for line in "${lines[@]}"; do add_text "$text_dir" "$line"; done

echo "parse_route: $(find "$mail_dir" -type f | wc -l) seeds, tag_quotes: $(find "$text_dir" -type f | wc -l) seeds"
