#!/usr/bin/env bash
# Start a private mail stack on 127.0.0.1 for postdesk's tests:
#   Postfix (SMTP, plain + STARTTLS) --LMTP over a unix socket--> Dovecot (IMAP + STARTTLS, IMAPS).
#
# Usage: tests/mailstack/start.sh [DIR]
#   DIR  state directory (default: a fresh /tmp/pdms.XXXX). Keep it short: unix socket
#        paths are limited to 108 bytes.
# Prints `export VAR=...` lines (also written to DIR/env): eval "$(tests/mailstack/start.sh)".
# Stop with tests/mailstack/stop.sh DIR (or with POSTDESK_MAILSTACK_DIR set).
#
# Users (IMAP login = full address, password = secret-<localpart>):
#   support@ customer1@ customer2@ agent1@ agent2@ oauthdesk@ example.com
# XOAUTH2 / OAUTHBEARER: Dovecot's oauth2 passdb checks the token by POSTing it to
# http://127.0.0.1:$POSTDESK_OAUTH_INTROSPECTION_PORT/introspect (RFC 7662; a free port picked
# here that nobody serves: the test that needs it listens there). An answer
# {"active": true, "username": "<login>"} accepts the token, anything else rejects it.
# No auth cache: every login is checked again.
# Domains example.com and example.org are local; mail to any other domain is bounced by
# Postfix's error transport (nothing ever leaves the machine).
# Optional pipe(8) routes (for `postdesk deliver` as Postfix's pipe transport), each one
# address delivered by running a command instead of into Dovecot:
#   POSTDESK_PIPE_ADDRESS=desk@example.com POSTDESK_PIPE_COMMAND="/path/postdesk deliver --config /path/config.toml"
#     -> transport "postdesk": pipe flags=DRX null_sender= user=$POSTDESK_PIPE_USER argv=COMMAND,
#        postdesk_destination_recipient_limit = 1
#   POSTDESK_PIPE_FLOOR_ADDRESS / POSTDESK_PIPE_FLOOR_COMMAND -> transport "pipefloor", the same
#        way (a trivial command, for the latency floor of the pipe path)
#   POSTDESK_PIPE_USER  the user the commands run as (default vmail; never root)
# The command is split on spaces (master.cf argv): no spaces inside its paths.
# Needs root (Postfix's master and Dovecot's master run as root and drop privileges);
# installs dovecot-imapd, dovecot-lmtpd and postfix when missing.
set -euo pipefail

USERS=(support customer1 customer2 agent1 agent2 oauthdesk)
MAIL_DOMAIN=example.com
READY_TIMEOUT=${POSTDESK_MAILSTACK_TIMEOUT:-15}

log() { printf 'mailstack: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing_packages() {
    local pkgs=()
    # dovecot-core comes in as a dependency of both
    { have dovecot && [ -x /usr/lib/dovecot/imap ]; } || pkgs+=(dovecot-imapd)
    [ -x /usr/lib/dovecot/lmtp ] || pkgs+=(dovecot-lmtpd)
    have postfix || pkgs+=(postfix)
    have openssl || pkgs+=(openssl)
    [ "${#pkgs[@]}" -eq 0 ] || printf '%s\n' "${pkgs[@]}"
}

POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=

restore_policy() {
    if [ -n "$POLICY_BACKUP" ]; then
        mv -f "$POLICY_BACKUP" "$POLICY"
        POLICY_BACKUP=
    else
        rm -f "$POLICY"
    fi
}

install_packages() {
    local -a pkgs=("$@")
    log "installing ${pkgs[*]} (apt-get, no daemons started)"
    if [ -e "$POLICY" ]; then
        POLICY_BACKUP=$(mktemp /usr/sbin/policy-rc.d.pdms.XXXXXX)
        cp -p "$POLICY" "$POLICY_BACKUP"
    fi
    trap restore_policy EXIT
    printf '#!/bin/sh\n# written by postdesk tests/mailstack/start.sh\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    local apt_log
    apt_log=$(mktemp /tmp/pdms-apt.XXXXXX)
    local -a apt=(apt-get install -y -q --no-install-recommends
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${pkgs[@]}")
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" >"$apt_log" 2>&1; then
        log "install failed; running apt-get update and retrying"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive "${apt[@]}" >>"$apt_log" 2>&1; }; then
            tail -n 30 "$apt_log" >&2
            die "apt-get install ${pkgs[*]} failed (log: $apt_log)"
        fi
    fi
    rm -f "$apt_log"
    restore_policy
    trap - EXIT
}

mapfile -t MISSING < <(missing_packages)
if [ "${#MISSING[@]}" -gt 0 ]; then
    if ! is_root; then
        log "missing packages; install them with:"
        log "  sudo apt-get install ${MISSING[*]}"
        exit 2
    fi
    install_packages "${MISSING[@]}"
fi
if ! is_root; then
    log "must run as root (Postfix's and Dovecot's master processes need it); try sudo"
    exit 2
fi
export PATH="/usr/sbin:/sbin:$PATH"

# Unprivileged owner of the maildirs.
if ! id vmail >/dev/null 2>&1; then
    getent group vmail >/dev/null || groupadd --system vmail
    useradd --system --gid vmail --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin vmail
fi
VMAIL_UID=$(id -u vmail)
VMAIL_GID=$(id -g vmail)

# ---------------------------------------------------------------------------------------
# 2. State directory
# ---------------------------------------------------------------------------------------
if [ $# -ge 1 ] && [ -n "$1" ]; then
    DIR=$1
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)
    if [ -e "$DIR/.pdms" ] && [ -e "$DIR/env" ]; then
        die "$DIR already holds a mail stack; stop it first (tests/mailstack/stop.sh $DIR)"
    fi
else
    DIR=$(mktemp -d /tmp/pdms.XXXX)
fi
chmod 755 "$DIR"
if [ "${#DIR}" -gt 60 ]; then
    die "state dir path too long (${#DIR} > 60 bytes; unix sockets live in it): $DIR"
fi
: >"$DIR/.pdms"

STARTED=
READY=
on_exit() {
    local rc=$?
    [ -z "$READY" ] || return 0
    log "start failed (exit $rc); state kept in $DIR"
    for f in dovecot.log postfix.log dovecot.out postfix.out; do
        if [ -s "$DIR/$f" ]; then
            log "---- last lines of $DIR/$f"
            tail -n 20 "$DIR/$f" >&2
        fi
    done
    if [ -n "$STARTED" ]; then
        KEEP=1 "$(dirname "$0")/stop.sh" "$DIR" >&2 || true
    fi
    exit 1
}
trap on_exit EXIT

# ---------------------------------------------------------------------------------------
# 3. Free ports
# ---------------------------------------------------------------------------------------
free_ports() { # N -> N distinct free TCP ports on 127.0.0.1
    local py
    py=$(command -v /usr/bin/python3 python3 | head -n 1) || true # skip pyenv-style shims
    if [ -n "$py" ]; then
        "$py" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
    else
        local -a ports=()
        local p
        while [ "${#ports[@]}" -lt "$1" ]; do
            p=$((20000 + RANDOM % 40000))
            [[ " ${ports[*]-} " == *" $p "* ]] && continue
            # connection refused => nobody listens there
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ports+=("$p"); fi
        done
        echo "${ports[*]}"
    fi
}
read -r IMAP_PORT IMAPS_PORT SMTP_PORT OAUTH_PORT < <(free_ports 4)

# ---------------------------------------------------------------------------------------
# 4. TLS: tiny CA + leaf (CA:FALSE, SANs localhost + 127.0.0.1)
# ---------------------------------------------------------------------------------------
TLS=$DIR/tls
mkdir -p "$TLS"
(
    cd "$TLS"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout ca.key -out ca.pem -days 3650 -subj "/CN=postdesk test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout leaf.key -out leaf.csr -subj "/CN=localhost" 2>/dev/null
    cat >leaf.ext <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 825 -sha256 -extfile leaf.ext -out leaf.pem 2>/dev/null
    cat leaf.pem ca.pem >leaf-chain.pem
    chmod 644 ca.pem leaf.pem leaf-chain.pem
)

# ---------------------------------------------------------------------------------------
# 5. Dovecot
# ---------------------------------------------------------------------------------------
mkdir -p "$DIR/mail"
chown vmail:vmail "$DIR/mail"
chmod 700 "$DIR/mail"
{
    for u in "${USERS[@]}"; do
        # user:password:uid:gid:gecos:home:shell:extra fields
        printf '%s@%s:{PLAIN}secret-%s::::::\n' "$u" "$MAIL_DOMAIN" "$u"
    done
} >"$DIR/users"
chmod 644 "$DIR/users"

# The oauth2 passdb's settings: RFC 7662 introspection by POST (body token=...), the user
# named by "username", a token valid only while "active" is true.
cat >"$DIR/oauth2.conf" <<EOF
introspection_mode = post
introspection_url = http://127.0.0.1:$OAUTH_PORT/introspect
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
EOF
chmod 644 "$DIR/oauth2.conf"

DOVECOT_CONF=$DIR/dovecot.conf
cat >"$DOVECOT_CONF" <<EOF
# postdesk test mail stack (generated by tests/mailstack/start.sh). No includes of /etc/dovecot.
base_dir = $DIR/dv
state_dir = $DIR/dv-state
instance_name = pdms-${DIR##*.}
log_path = $DIR/dovecot.log
info_log_path = $DIR/dovecot.log
debug_log_path = $DIR/dovecot.log
auth_verbose = yes
verbose_proctitle = yes

protocols = imap lmtp
listen = 127.0.0.1

ssl = yes
ssl_cert = <$TLS/leaf-chain.pem
ssl_key = <$TLS/leaf.key
ssl_min_protocol = TLSv1.2

# Loopback tests: plaintext LOGIN allowed, no delay or penalty after a wrong password.
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
auth_cache_size = 0
auth_username_format = %Lu
mail_max_userip_connections = 100
login_trusted_networks = 127.0.0.0/8

first_valid_uid = $VMAIL_UID
first_valid_gid = $VMAIL_GID
mail_uid = $VMAIL_UID
mail_gid = $VMAIL_GID
mail_home = $DIR/mail/%Ld/%Ln
mail_location = maildir:~/Maildir
mail_fsync = never
mailbox_idle_check_interval = 1 secs
recipient_delimiter = +
postmaster_address = postmaster@$MAIL_DOMAIN

namespace inbox {
  inbox = yes
  mailbox INBOX {
    auto = subscribe
  }
}

# Dovecot 2.3 answers a failed login only on its 500 ms failure-queue tick, even with
# auth_failure_delay = 0, unless the passdb reply carries "nodelay" - and a failing passdb's
# fields are rolled back. So this first passdb only adds nodelay (noauthenticate = result
# NEXT, fields kept) and the real check is the passwd-file below.
passdb {
  driver = static
  args = nopassword noauthenticate nodelay=yes
  result_success = continue
}
# XOAUTH2/OAUTHBEARER only: the token goes to the test's introspection endpoint. A rejected
# token ends the lookup (it is never tried as a password below).
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $DIR/oauth2.conf
  result_failure = return-fail
  result_internalfail = return-fail
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu $DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%Lu $DIR/users
  default_fields = uid=$VMAIL_UID gid=$VMAIL_GID home=$DIR/mail/%Ld/%Ln
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
# Auth penalty off: without this socket the auth process disables its penalty tracking.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service lmtp {
  unix_listener $DIR/lmtp {
    mode = 0666
  }
}
protocol lmtp {
  lmtp_save_to_detail_mailbox = no
}
EOF

# ---------------------------------------------------------------------------------------
# 6. Postfix (a second instance: postfix -c $DIR/pf)
# ---------------------------------------------------------------------------------------
PF=$DIR/pf
mkdir -p "$PF" "$DIR/pfq" "$DIR/pfd"
chown postfix "$DIR/pfd"
{
    for u in "${USERS[@]}"; do printf '%s@%s OK\n' "$u" "$MAIL_DOMAIN"; done
} >"$PF/vmailbox"

cat >"$PF/main.cf" <<EOF
# postdesk test mail stack (generated by tests/mailstack/start.sh)
compatibility_level = 3.6
queue_directory = $DIR/pfq
data_directory = $DIR/pfd
syslog_name = postfix-pdms
maillog_file = $DIR/postfix.log
maillog_file_prefixes = $DIR
myhostname = mx.example.com
mydomain = example.com
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
virtual_alias_domains =
virtual_alias_maps =
virtual_mailbox_domains = example.com example.org
virtual_mailbox_maps = texthash:$PF/vmailbox
virtual_transport = lmtp:unix:$DIR/lmtp
recipient_delimiter = +
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
relay_domains =
default_transport = error:no outside mail in tests
relay_transport = error:no outside mail in tests
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
lmtp_host_lookup = native
biff = no
append_dot_mydomain = no
# do not repair headers of mail from loopback clients (a missing Message-ID must show)
local_header_rewrite_clients =
# Dovecot 2.3's LMTP does not offer SMTPUTF8, so Postfix would bounce (5.6.7) every mail
# that asked for SMTPUTF8 and has UTF-8 headers. Off: such a client gets a refusal at once,
# and raw UTF-8 headers sent without SMTPUTF8 (8BITMIME) are delivered as they are.
smtputf8_enable = no
message_size_limit = 41943040
mailbox_size_limit = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
in_flow_delay = 0s
smtpd_error_sleep_time = 0s
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_tls_security_level = may
smtpd_tls_chain_files = $TLS/leaf.key, $TLS/leaf-chain.pem
smtpd_tls_loglevel = 0
smtpd_banner = \$myhostname ESMTP postdesk-test
EOF

# Optional pipe(8) routes (see the top of this file).
PIPE_USER=${POSTDESK_PIPE_USER:-vmail}
PIPE_ROUTES=() # "transport address command"
if [ -n "${POSTDESK_PIPE_ADDRESS:-}" ]; then
    [ -n "${POSTDESK_PIPE_COMMAND:-}" ] || die "POSTDESK_PIPE_ADDRESS needs POSTDESK_PIPE_COMMAND"
    PIPE_ROUTES+=("postdesk $POSTDESK_PIPE_ADDRESS $POSTDESK_PIPE_COMMAND")
fi
if [ -n "${POSTDESK_PIPE_FLOOR_ADDRESS:-}" ]; then
    [ -n "${POSTDESK_PIPE_FLOOR_COMMAND:-}" ] ||
        die "POSTDESK_PIPE_FLOOR_ADDRESS needs POSTDESK_PIPE_FLOOR_COMMAND"
    PIPE_ROUTES+=("pipefloor $POSTDESK_PIPE_FLOOR_ADDRESS $POSTDESK_PIPE_FLOOR_COMMAND")
fi
if [ "${#PIPE_ROUTES[@]}" -gt 0 ]; then
    id "$PIPE_USER" >/dev/null 2>&1 || die "POSTDESK_PIPE_USER $PIPE_USER does not exist"
    [ "$(id -u "$PIPE_USER")" -ne 0 ] || die "Postfix's pipe refuses to run commands as root"
    : >"$PF/transport"
    for route in "${PIPE_ROUTES[@]}"; do
        read -r transport address _ <<<"$route"
        printf '%s OK\n' "$address" >>"$PF/vmailbox"
        printf '%s %s:\n' "$address" "$transport" >>"$PF/transport"
        printf '%s_destination_recipient_limit = 1\n' "$transport" >>"$PF/main.cf"
    done
    printf 'transport_maps = texthash:%s\n' "$PF/transport" >>"$PF/main.cf"
fi

cat >"$PF/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
for route in "${PIPE_ROUTES[@]}"; do
    read -r transport address command <<<"$route"
    printf '%s unix - n n - - pipe\n  flags=DRX null_sender= user=%s argv=%s\n' \
        "$transport" "$PIPE_USER" "$command" >>"$PF/master.cf"
done
# Postfix re-reads config files younger than ~2 s: back-date everything we wrote.
find "$DIR" -xdev -exec touch -h -d '-10 seconds' {} +

# ---------------------------------------------------------------------------------------
# 7. Start and wait
# ---------------------------------------------------------------------------------------
STARTED=1
dovecot -c "$DOVECOT_CONF" </dev/null >>"$DIR/dovecot.out" 2>&1
# "postfix start" runs its own check (creates the queue directories with the right owners)
postfix -c "$PF" start </dev/null >>"$DIR/postfix.out" 2>&1

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# the greeting: imap-login sends "* OK" only once the auth process is up
greets() ( # PORT PREFIX (a subshell: a failed connect must not end the script)
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    line=
    IFS= read -r -t 1 line <&3 || true
    [[ "$line" == "$2"* ]]
)
deadline=$((SECONDS + READY_TIMEOUT))
while :; do
    if greets "$IMAP_PORT" "* OK" 2>/dev/null && port_open "$IMAPS_PORT" &&
        greets "$SMTP_PORT" "220 " 2>/dev/null &&
        [ -S "$DIR/lmtp" ]; then
        break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "not ready after ${READY_TIMEOUT}s (imap $IMAP_PORT, imaps $IMAPS_PORT, smtp $SMTP_PORT)"
        exit 1
    fi
    sleep 0.05
done
# a daemon that dies on a bad setting only says so in its log (qmgr starts with the master)
sleep 0.1
if grep -E -i -q 'postfix-pdms/[a-z]+\[[0-9]+\]: (fatal|panic)' "$DIR/postfix.log" ||
    grep -E -q ': (Fatal|Panic): ' "$DIR/dovecot.log" 2>/dev/null; then
    log "a daemon logged a fatal error"
    exit 1
fi

# ---------------------------------------------------------------------------------------
# 8. Environment
# ---------------------------------------------------------------------------------------
{
    printf 'export POSTDESK_MAILSTACK_DIR=%q\n' "$DIR"
    printf 'export POSTDESK_IMAP_HOST=127.0.0.1\n'
    printf 'export POSTDESK_IMAP_PORT=%s\n' "$IMAP_PORT"
    printf 'export POSTDESK_IMAPS_PORT=%s\n' "$IMAPS_PORT"
    printf 'export POSTDESK_SMTP_HOST=127.0.0.1\n'
    printf 'export POSTDESK_SMTP_PORT=%s\n' "$SMTP_PORT"
    printf 'export POSTDESK_OAUTH_INTROSPECTION_PORT=%s\n' "$OAUTH_PORT"
    printf 'export POSTDESK_CA_CERT=%q\n' "$TLS/ca.pem"
    printf 'export POSTDESK_MAIL_DOMAIN=%s\n' "$MAIL_DOMAIN"
    printf 'export POSTDESK_MAILDIR_ROOT=%q\n' "$DIR/mail/$MAIL_DOMAIN"
    printf 'export POSTDESK_DOVECOT_CONF=%q\n' "$DOVECOT_CONF"
    printf 'export POSTDESK_DOVECOT_PID_FILE=%q\n' "$DIR/dv/master.pid"
    printf 'export POSTDESK_POSTFIX_CONFIG_DIR=%q\n' "$PF"
    printf 'export POSTDESK_POSTFIX_PID_FILE=%q\n' "$DIR/pfq/pid/master.pid"
} >"$DIR/env"
READY=1
cat "$DIR/env"
