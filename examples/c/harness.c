/*
 * A C99 test harness for sessiond through its C ABI (sessiond.h) alone: it calls every
 * function and checks every documented answer, failures included. A check that fails
 * prints a FAIL line and the run goes on; the last line counts them.
 *
 * Build (from the repository root, after `cargo build --lib`):
 *   cc -std=c99 -Wall -Wextra -o harness examples/c/harness.c -Iexamples/c \
 *      target/debug/libsessiond.a -lpthread -ldl -lm
 * Run:
 *   ./harness HOST:PORT USER PASSWORD
 * against a server that takes registrations and several sessions per account
 * (sessiond --registration open --max-sessions-per-user 0) and has no other session of USER.
 * Optional settings, each adding its checks (tests/c_harness.rs sets them all):
 *   SESSIOND_CA=ca.pem           TLS on every server (certificates for "localhost")
 *   SESSIOND_OTHER_CA=other.pem  with SESSIOND_CA: a CA that did not sign them
 *   SESSIOND_EXPIRY_ADDR=h:p     a server whose sessions last about a second (USER and
 *                                PASSWORD work there too)
 *   SESSIOND_GARBAGE_ADDR=h:p    a TCP listener that answers with bytes that are not frames
 *   SESSIOND_CONTROL_ADDR=h:p, SESSIOND_CONTROL_USER, SESSIOND_CONTROL_PASSWORD:
 *                                a server that whoever runs the harness stops (SIGSTOP),
 *                                continues and kills (SIGKILL) when the harness prints
 *                                "CONTROL stop", "CONTROL cont", "CONTROL kill"; it waits
 *                                for a line on stdin after each, once that is done
 *   ./harness --layout           prints the structs' sizes and field offsets
 * Output: a line per section, "FAIL ..." per failed check, "skipped: ..." per section left
 * out, then "N checks, F failed". Exit status: 0 when every check passed, 1 otherwise,
 * 64 for a usage error. Passwords and tokens are never printed.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond.h"

#define TIMEOUT_MS 5000
#define WORDS 1024

/* The account the harness registers on the main server. */
#define CAROL "carol"
#define CAROL_PW "carol: a long password"
#define CAROL_NEW_PW "carol: a newer password"
#define ZERO_TOKEN "0000000000000000000000000000000000000000000000000000000000000000"

static struct {
    const char *addr, *user, *password;
    const char *ca, *other_ca, *expiry_addr, *garbage_addr;
    const char *control_addr, *control_user, *control_password;
} cfg;

static int checks, failed;
/* The line of the check helper's caller, for FAIL lines from helpers. */
static int from_line;

static void check_(int ok, int line, const char *what, const char *detail) {
    checks++;
    if (ok) {
        return;
    }
    failed++;
    if (from_line != 0) {
        printf("FAIL line %d (from line %d): %s", line, from_line, what);
    } else {
        printf("FAIL line %d: %s", line, what);
    }
    if (detail != NULL && detail[0] != '\0') {
        printf(": %s", detail);
    }
    printf("\n");
    fflush(stdout);
}

#define CHECK(cond) check_((cond) != 0, __LINE__, #cond, NULL)

/* Copies the last error's words (they are only valid until the next call). */
static void save_error(char *dst) {
    snprintf(dst, WORDS, "%s", sessiond_last_error());
}

/* The status of `call` must be `want`. Returns it. */
static int expect_(int line, const char *what, int got, int want) {
    char words[WORDS], detail[WORDS + 128];
    save_error(words);
    detail[0] = '\0';
    if (got != want) {
        snprintf(detail, sizeof detail, "got %s, want %s (%s)", sessiond_status_name(got),
                 sessiond_status_name(want), words);
    }
    check_(got == want, line, what, detail);
    return got;
}

#define EXPECT(want, call) expect_(__LINE__, #call, (call), (want))

/* sessiond_last_error() must hold `words` again. */
static void same_(int line, const char *words) {
    char now[WORDS];
    save_error(now);
    check_(strcmp(now, words) == 0, line, "sessiond_last_error() says the same again", now);
}

#define SAME(words) same_(__LINE__, (words))

/* sessiond_last_error() must contain `part`. */
static void says_(int line, const char *part) {
    char now[WORDS], what[256];
    save_error(now);
    snprintf(what, sizeof what, "sessiond_last_error() mentions \"%s\"", part);
    check_(strstr(now, part) != NULL, line, what, now);
}

#define SAYS(part) says_(__LINE__, (part))

static int is_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0) {
            return 0;
        }
    }
    return 1;
}

static void section(const char *name) {
    printf("== %s\n", name);
    fflush(stdout);
}

static void skipped(const char *name, const char *setting) {
    printf("skipped: %s (set %s)\n", name, setting);
}

/* A new handle to `addr`, over TLS when SESSIOND_CA is set. */
static sessiond_client *open_at(int line, const char *addr) {
    sessiond_client *c = NULL;
    int st = cfg.ca != NULL
                 ? sessiond_connect_tls(addr, "localhost", cfg.ca, 0, TIMEOUT_MS, &c)
                 : sessiond_connect(addr, TIMEOUT_MS, &c);
    expect_(line, "connect", st, SESSIOND_OK);
    return c;
}

/* A new handle to `addr` logged in as `user`. */
static sessiond_client *login_at(int line, const char *addr, const char *user, const char *pw,
                                 const char *device) {
    sessiond_client *c = open_at(line, addr);
    expect_(line, "sessiond_login", sessiond_login(c, user, pw, device, "c99"), SESSIOND_OK);
    return c;
}

#define OPEN(addr) open_at(__LINE__, (addr))
#define LOGIN(addr, user, pw, device) login_at(__LINE__, (addr), (user), (pw), (device))

/* The handle's session id (0 if it has none). */
static uint64_t session_of(sessiond_client *c) {
    sessiond_identity id;
    if (sessiond_whoami(c, &id) != SESSIOND_OK) {
        return 0;
    }
    return id.session_id;
}

/* The next event must be `kind` with `reason` about session `sid`. */
static void expect_event_(int line, sessiond_client *c, uint32_t timeout_ms, int kind,
                          uint32_t reason, uint64_t sid) {
    sessiond_event ev;
    memset(&ev, 0xa5, sizeof ev);
    from_line = line;
    EXPECT(SESSIOND_OK, sessiond_next_event(c, timeout_ms, &ev));
    CHECK(ev.kind == kind);
    CHECK(ev.reason == reason);
    CHECK(ev.session_id == sid);
    CHECK(strlen(ev.detail) > 0 && strlen(ev.detail) < SESSIOND_DETAIL);
    from_line = 0;
}

#define EXPECT_EVENT(c, timeout, kind, reason, sid) \
    expect_event_(__LINE__, (c), (timeout), (kind), (reason), (sid))

/*
 * The handle is over: every call but sessiond_next_event (which delivers the pushes that
 * came before the end first: EXPECT_DRAINED) answers `want` with the words of the call
 * that found out, twice over. With `kept_token`, sessiond_token and sessiond_whoami still
 * answer the session it had.
 */
static void expect_over_(int line, sessiond_client *c, int want, const char *kept_token,
                         uint64_t kept_sid) {
    char words[WORDS];
    save_error(words);
    from_line = line;
    CHECK(words[0] != '\0');
    for (int round = 0; round < 2; round++) {
        uint64_t t = 7;
        size_t n = 7, total = 7;
        uint32_t k = 7;
        int removed = 7;
        sessiond_session s[2];
        sessiond_identity id;
        char tok[SESSIOND_TOKEN_SIZE];

        EXPECT(want, sessiond_heartbeat(c, &t));
        SAME(words);
        CHECK(t == 0);
        EXPECT(want, sessiond_list_sessions(c, s, 2, &n, &total));
        SAME(words);
        CHECK(n == 0 && total == 0);
        EXPECT(want, sessiond_logout(c));
        SAME(words);
        EXPECT(want, sessiond_login(c, "x", "y", "c-harness", "c99"));
        SAME(words);
        EXPECT(want, sessiond_register(c, "x", "a long password", "x@example.org"));
        SAME(words);
        EXPECT(want, sessiond_resume(c, ZERO_TOKEN, "c-harness", "c99"));
        SAME(words);
        EXPECT(want, sessiond_revoke_session(c, 1));
        SAME(words);
        EXPECT(want, sessiond_logout_all(c, 0, &k));
        SAME(words);
        CHECK(k == 0);
        k = 7;
        EXPECT(want, sessiond_change_password(c, "a long password", "another password", &k));
        SAME(words);
        CHECK(k == 0);
        EXPECT(want, sessiond_disconnect(c));
        SAME(words);
        EXPECT(want, sessiond_set_attr(c, "k", "v", 1));
        SAME(words);
        EXPECT(want, sessiond_get_attr(c, "k", s, sizeof s, &n));
        SAME(words);
        CHECK(n == 0);
        removed = 7;
        EXPECT(want, sessiond_remove_attr(c, "k", &removed));
        SAME(words);
        CHECK(removed == 0);
        memset(&id, 0xa5, sizeof id);
        memset(tok, 'x', sizeof tok);
        if (kept_token != NULL) {
            EXPECT(SESSIOND_OK, sessiond_token(c, tok, sizeof tok));
            CHECK(strcmp(tok, kept_token) == 0);
            EXPECT(SESSIOND_OK, sessiond_whoami(c, &id));
            CHECK(id.session_id == kept_sid);
        } else {
            EXPECT(want, sessiond_token(c, tok, sizeof tok));
            SAME(words);
            CHECK(tok[0] == '\0');
            EXPECT(want, sessiond_whoami(c, &id));
            SAME(words);
            CHECK(is_zero(&id, sizeof id));
        }
    }
    from_line = 0;
}

#define EXPECT_OVER(c, want, kept_token, kept_sid) \
    expect_over_(__LINE__, (c), (want), (kept_token), (kept_sid))

/* An over handle whose pushes have all been taken: sessiond_next_event answers `want`
 * with the end's words, twice. */
static void expect_drained_(int line, sessiond_client *c, int want) {
    char words[WORDS];
    sessiond_event ev;
    save_error(words);
    from_line = line;
    for (int round = 0; round < 2; round++) {
        memset(&ev, 0xa5, sizeof ev);
        EXPECT(want, sessiond_next_event(c, 0, &ev));
        SAME(words);
        CHECK(is_zero(&ev, sizeof ev));
    }
    from_line = 0;
}

#define EXPECT_DRAINED(c, want) expect_drained_(__LINE__, (c), (want))

/* The handle is open and logged out: calls that need a session are refused. */
static void expect_logged_out_(int line, sessiond_client *c) {
    uint64_t t = 7;
    size_t n = 7;
    uint32_t k = 7;
    int removed = 7;
    sessiond_session s[1];
    sessiond_identity id;
    char tok[SESSIOND_TOKEN_SIZE];
    from_line = line;
    for (int round = 0; round < 2; round++) {
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_heartbeat(c, &t));
        SAYS("not logged in");
        CHECK(t == 0);
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_list_sessions(c, s, 1, &n, NULL));
        CHECK(n == 0);
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_token(c, tok, sizeof tok));
        CHECK(tok[0] == '\0');
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_whoami(c, &id));
        CHECK(is_zero(&id, sizeof id));
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_logout(c));
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_revoke_session(c, 1));
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_logout_all(c, 0, &k));
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_change_password(c, "a", "b", &k));
        SAYS("not logged in");
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_set_attr(c, "k", "v", 1));
        SAYS("not logged in");
        n = 7;
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_get_attr(c, "k", tok, sizeof tok, &n));
        SAYS("not logged in");
        CHECK(n == 0);
        EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_remove_attr(c, "k", &removed));
        SAYS("not logged in");
        CHECK(removed == 0);
    }
    from_line = 0;
}

#define EXPECT_LOGGED_OUT(c) expect_logged_out_(__LINE__, (c))

/* Asks whoever runs the harness to do `what` to the control server, and waits for it. */
static void control(const char *what) {
    char line[64];
    printf("CONTROL %s\n", what);
    fflush(stdout);
    CHECK(fgets(line, sizeof line, stdin) != NULL);
}

static void print_layout(void) {
#define FIELD(T, f) printf(" %s=%zu", #f, offsetof(T, f))
    printf("sessiond_session size=%zu", sizeof(sessiond_session));
    FIELD(sessiond_session, session_id);
    FIELD(sessiond_session, current);
    FIELD(sessiond_session, connected);
    FIELD(sessiond_session, created_ms);
    FIELD(sessiond_session, last_active_ms);
    FIELD(sessiond_session, expires_ms);
    FIELD(sessiond_session, client);
    FIELD(sessiond_session, platform);
    FIELD(sessiond_session, address);
    printf("\nsessiond_identity size=%zu", sizeof(sessiond_identity));
    FIELD(sessiond_identity, session_id);
    FIELD(sessiond_identity, user_id);
    FIELD(sessiond_identity, role);
    FIELD(sessiond_identity, username);
    FIELD(sessiond_identity, user_created_ms);
    FIELD(sessiond_identity, last_login_ms);
    FIELD(sessiond_identity, session_created_ms);
    FIELD(sessiond_identity, session_expires_ms);
    FIELD(sessiond_identity, idle_expiry_ms);
    FIELD(sessiond_identity, heartbeat_interval_ms);
    FIELD(sessiond_identity, heartbeat_timeout_ms);
    printf("\nsessiond_event size=%zu", sizeof(sessiond_event));
    FIELD(sessiond_event, kind);
    FIELD(sessiond_event, reason);
    FIELD(sessiond_event, session_id);
    FIELD(sessiond_event, detail);
    printf("\n");
#undef FIELD
}

/* Calls that need no server: versions, status words. */
static void pure_calls(void) {
#define S(x) {x, #x}
    static const struct {
        int status;
        const char *name;
    } statuses[] = {
        S(SESSIOND_OK),         S(SESSIOND_ERR_ARGUMENT), S(SESSIOND_ERR_NETWORK),
        S(SESSIOND_ERR_TIMEOUT), S(SESSIOND_ERR_REFUSED), S(SESSIOND_ERR_SESSION_ENDED),
        S(SESSIOND_ERR_PROTOCOL), S(SESSIOND_ERR_PANIC), S(SESSIOND_NO_EVENT),
        S(SESSIOND_ERR_CLOSED), S(SESSIOND_ERR_TLS),    S(SESSIOND_NOT_SET),
    };
#undef S
    size_t n = sizeof statuses / sizeof statuses[0];
    uint32_t proto = 0;
    const char *v;

    section("versions and status words");
    v = sessiond_version(&proto);
    CHECK(v != NULL && strcmp(v, SESSIOND_VERSION) == 0);
    CHECK(proto == SESSIOND_PROTOCOL_VERSION);
    CHECK(strcmp(sessiond_version(NULL), SESSIOND_VERSION) == 0);
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(sessiond_status_name(statuses[i].status), statuses[i].name) == 0);
        CHECK(strlen(sessiond_status_message(statuses[i].status)) > 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(sessiond_status_message(statuses[i].status),
                         sessiond_status_message(statuses[j].status)) != 0);
        }
    }
    CHECK(strcmp(sessiond_status_name(-1), "unknown") == 0);
    CHECK(strcmp(sessiond_status_name(SESSIOND_NOT_SET + 1), "unknown") == 0);
    CHECK(strcmp(sessiond_status_message(999), "not a sessiond status") == 0);
}

/* NULL handles and out-parameters, bad flags, timeouts and addresses: refused, outs cleared. */
static void bad_arguments(void) {
    static long long sentinel;
    sessiond_client *c = (sessiond_client *)(void *)&sentinel;
    char tok[SESSIOND_TOKEN_SIZE];
    sessiond_identity id;
    sessiond_session s[2];
    sessiond_event ev;
    uint64_t t = 7;
    size_t n = 7, total = 7;
    uint32_t k = 7;
    int removed = 7;

    section("bad arguments");
    memset(tok, 'x', sizeof tok);
    memset(&id, 0xa5, sizeof id);
    memset(&ev, 0xa5, sizeof ev);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_register(NULL, "u", "a long password", ""));
    SAYS("client handle is NULL");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_login(NULL, "u", "p", "c", "p"));
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_resume(NULL, ZERO_TOKEN, "c", "p"));
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_token(NULL, tok, sizeof tok));
    CHECK(tok[0] == '\0');
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_whoami(NULL, &id));
    CHECK(is_zero(&id, sizeof id));
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_heartbeat(NULL, &t));
    CHECK(t == 0);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_list_sessions(NULL, s, 2, &n, &total));
    CHECK(n == 0 && total == 0);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_revoke_session(NULL, 1));
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_logout_all(NULL, 0, &k));
    CHECK(k == 0);
    k = 7;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_change_password(NULL, "a", "b", &k));
    CHECK(k == 0);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_set_attr(NULL, "k", "v", 1));
    SAYS("client handle is NULL");
    n = 7;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_get_attr(NULL, "k", tok, sizeof tok, &n));
    CHECK(n == 0);
    removed = 7;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_remove_attr(NULL, "k", &removed));
    CHECK(removed == 0);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_logout(NULL));
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_disconnect(NULL));
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_next_event(NULL, 0, &ev));
    CHECK(is_zero(&ev, sizeof ev));
    SAYS("client handle is NULL");
    sessiond_free(NULL);

    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_connect(NULL, TIMEOUT_MS, &c));
    CHECK(c == NULL);
    SAYS("addr is NULL");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_connect(cfg.addr, TIMEOUT_MS, NULL));
    SAYS("out is NULL");
    c = (sessiond_client *)(void *)&sentinel;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_connect(cfg.addr, 0, &c));
    CHECK(c == NULL);
    SAYS("timeout_ms");
    c = (sessiond_client *)(void *)&sentinel;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_connect_tls(cfg.addr, "localhost", NULL, 0, 0, &c));
    CHECK(c == NULL);
    c = (sessiond_client *)(void *)&sentinel;
    EXPECT(SESSIOND_ERR_ARGUMENT,
           sessiond_connect_tls(cfg.addr, "localhost", NULL, 2u, TIMEOUT_MS, &c));
    CHECK(c == NULL);
    SAYS("unknown flag bits 0x2");
    EXPECT(SESSIOND_ERR_ARGUMENT,
           sessiond_connect_tls(cfg.addr, "localhost", NULL,
                                SESSIOND_TLS_INSECURE_SKIP_VERIFY | 0x80000000u, TIMEOUT_MS,
                                &c));
    SAYS("unknown flag bits 0x80000000");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_connect_tls(cfg.addr, NULL, NULL, 0, TIMEOUT_MS, &c));
    SAYS("server_name is NULL");

    section("connections that cannot be made");
    c = (sessiond_client *)(void *)&sentinel;
    /* port 1 on loopback: nothing listens there */
    EXPECT(SESSIOND_ERR_NETWORK, sessiond_connect("127.0.0.1:1", TIMEOUT_MS, &c));
    CHECK(c == NULL);
    CHECK(strlen(sessiond_last_error()) > 0);
    c = (sessiond_client *)(void *)&sentinel;
    EXPECT(SESSIOND_ERR_NETWORK, sessiond_connect("not an address", TIMEOUT_MS, &c));
    CHECK(c == NULL);
    c = (sessiond_client *)(void *)&sentinel;
    EXPECT(SESSIOND_ERR_NETWORK,
           sessiond_connect_tls("127.0.0.1:1", "localhost", NULL, 0, TIMEOUT_MS, &c));
    CHECK(c == NULL);
}

/* TLS refusals: a CA that did not sign, a wrong name, no CA file, a peer without TLS. */
static void tls_refusals(void) {
    sessiond_client *c = NULL;
    sessiond_identity id;

    section("TLS refusals");
    if (cfg.other_ca != NULL) {
        EXPECT(SESSIOND_ERR_TLS,
               sessiond_connect_tls(cfg.addr, "localhost", cfg.other_ca, 0, TIMEOUT_MS, &c));
        CHECK(c == NULL);
        /* the same untrusted certificate, accepted on request */
        EXPECT(SESSIOND_OK,
               sessiond_connect_tls(cfg.addr, "localhost", cfg.other_ca,
                                    SESSIOND_TLS_INSECURE_SKIP_VERIFY, TIMEOUT_MS, &c));
        EXPECT(SESSIOND_OK, sessiond_login(c, cfg.user, cfg.password, "c-harness", "c99"));
        EXPECT(SESSIOND_OK, sessiond_whoami(c, &id));
        CHECK(strcmp(id.username, cfg.user) == 0);
        EXPECT(SESSIOND_OK, sessiond_logout(c));
        sessiond_free(c);
        c = NULL;
    } else {
        skipped("a CA that did not sign the certificate", "SESSIOND_OTHER_CA");
    }
    EXPECT(SESSIOND_ERR_TLS,
           sessiond_connect_tls(cfg.addr, "example.com", cfg.ca, 0, TIMEOUT_MS, &c));
    CHECK(c == NULL);
    EXPECT(SESSIOND_ERR_TLS, sessiond_connect_tls(cfg.addr, "localhost",
                                                  "/nonexistent/sessiond-ca.pem", 0,
                                                  TIMEOUT_MS, &c));
    CHECK(c == NULL);
    SAYS("TLS configuration");
    if (cfg.garbage_addr != NULL) {
        EXPECT(SESSIOND_ERR_TLS,
               sessiond_connect_tls(cfg.garbage_addr, "localhost", cfg.ca, 0, TIMEOUT_MS, &c));
        CHECK(c == NULL);
    }
}

/* Log in, use the session, log out, log in again, disconnect, resume. */
static void life_cycle(void) {
    sessiond_client *c, *c2, *c3, *c4;
    char tok[SESSIOND_TOKEN_SIZE], small[SESSIOND_TOKEN_SIZE - 1];
    sessiond_identity id;
    sessiond_session s[8];
    sessiond_event ev;
    uint64_t t = 0, last = 0, sid;
    size_t n = 0, total = 0, current = 0;

    section("life cycle");
    memset(s, 0, sizeof s); /* read only where a call filled it, but a failed check reads too */
    c = OPEN(cfg.addr);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_heartbeat(c, &t));
    SAYS("not logged in");
    EXPECT(SESSIOND_ERR_REFUSED,
           sessiond_login(c, cfg.user, "not the password", "c-harness", "c99"));
    SAYS("INVALID_CREDENTIALS");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_login(c, NULL, cfg.password, "c-harness", "c99"));
    SAYS("username is NULL");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_login(c, cfg.user, cfg.password, "c-harness", NULL));
    EXPECT(SESSIOND_OK, sessiond_login(c, cfg.user, cfg.password, "c-harness", "c99"));
    printf("logged in\n");

    EXPECT(SESSIOND_OK, sessiond_token(c, tok, sizeof tok));
    CHECK(strlen(tok) == 64 && strspn(tok, "0123456789abcdef") == 64);
    memset(small, 'x', sizeof small);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_token(c, small, sizeof small));
    CHECK(small[0] == '\0');
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_token(c, NULL, sizeof tok));

    memset(&id, 0xa5, sizeof id);
    EXPECT(SESSIOND_OK, sessiond_whoami(c, &id));
    CHECK(strcmp(id.username, cfg.user) == 0);
    CHECK(id.role == SESSIOND_ROLE_USER || id.role == SESSIOND_ROLE_ADMIN);
    CHECK(id.session_id != 0 && id.user_id != 0);
    CHECK(id.user_created_ms > 0);
    CHECK(id.session_expires_ms > id.session_created_ms);
    CHECK(id.idle_expiry_ms > 0);
    CHECK(id.heartbeat_interval_ms > 0 && id.heartbeat_timeout_ms > id.heartbeat_interval_ms);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_whoami(c, NULL));

    for (int i = 0; i < 3; i++) {
        EXPECT(SESSIOND_OK, sessiond_heartbeat(c, &t));
        CHECK(t > 0 && t >= last);
        last = t;
    }
    EXPECT(SESSIOND_OK, sessiond_heartbeat(c, NULL));

    EXPECT(SESSIOND_OK, sessiond_list_sessions(c, s, 8, &n, &total));
    CHECK(n >= 1 && n == total);
    for (size_t i = 0; i < n && i < 8; i++) {
        if (s[i].current) {
            current++;
            CHECK(s[i].session_id == id.session_id);
            CHECK(strcmp(s[i].client, "c-harness") == 0 && strcmp(s[i].platform, "c99") == 0);
            CHECK(strncmp(s[i].address, "127.0.0.1:", 10) == 0);
            CHECK(s[i].connected == 1);
            CHECK(s[i].created_ms <= s[i].last_active_ms && s[i].created_ms < s[i].expires_ms);
        }
    }
    CHECK(current == 1);

    memset(&ev, 0xa5, sizeof ev);
    EXPECT(SESSIOND_NO_EVENT, sessiond_next_event(c, 0, &ev));
    CHECK(is_zero(&ev, sizeof ev));
    EXPECT(SESSIOND_NO_EVENT, sessiond_next_event(c, 50, &ev));
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_next_event(c, 0, NULL));

    EXPECT(SESSIOND_OK, sessiond_logout(c));
    printf("logged out\n");
    EXPECT_LOGGED_OUT(c);
    /* After a logout the connection takes another login. */
    EXPECT(SESSIOND_OK, sessiond_login(c, cfg.user, cfg.password, "c-harness", "c99"));
    EXPECT(SESSIOND_OK, sessiond_token(c, tok, sizeof tok));
    sid = session_of(c);
    CHECK(sid != 0 && sid != id.session_id);

    EXPECT(SESSIOND_OK, sessiond_disconnect(c));
    printf("disconnected\n");
    EXPECT(SESSIOND_ERR_CLOSED, sessiond_heartbeat(c, NULL));
    SAYS("disconnected by sessiond_disconnect");
    EXPECT_OVER(c, SESSIOND_ERR_CLOSED, tok, sid);
    EXPECT_DRAINED(c, SESSIOND_ERR_CLOSED);
    sessiond_free(c);

    section("resume");
    c2 = OPEN(cfg.addr);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_resume(c2, "not hex", "c-harness", "c99"));
    SAYS("64 hex digits");
    EXPECT(SESSIOND_OK, sessiond_resume(c2, tok, "c-harness", "c99"));
    CHECK(session_of(c2) == sid);
    EXPECT(SESSIOND_OK, sessiond_heartbeat(c2, NULL));
    /* the session is bound to c2: another resume is refused, and its connection closed */
    c3 = OPEN(cfg.addr);
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_resume(c3, tok, "c-harness", "c99"));
    SAYS("in use on another connection");
    EXPECT(SESSIOND_ERR_CLOSED, sessiond_heartbeat(c3, NULL));
    SAYS("in use on another connection");
    EXPECT_OVER(c3, SESSIOND_ERR_CLOSED, NULL, 0);
    EXPECT_DRAINED(c3, SESSIOND_ERR_CLOSED);
    sessiond_free(c3);
    EXPECT(SESSIOND_OK, sessiond_heartbeat(c2, NULL));
    EXPECT(SESSIOND_OK, sessiond_logout(c2));
    sessiond_free(c2);
    /* a dead token: SESSION_ENDED, and the handle stays open for a login */
    c4 = OPEN(cfg.addr);
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_resume(c4, tok, "c-harness", "c99"));
    SAYS("LOGGED_OUT");
    EXPECT_LOGGED_OUT(c4);
    EXPECT(SESSIOND_OK, sessiond_login(c4, cfg.user, cfg.password, "c-harness", "c99"));
    EXPECT(SESSIOND_OK, sessiond_heartbeat(c4, NULL));
    EXPECT(SESSIOND_OK, sessiond_logout(c4));
    EXPECT(SESSIOND_OK, sessiond_disconnect(c4));
    sessiond_free(c4);
}

/* Session attributes: set, get, overwrite, remove, values with NUL bytes, the limits, and
 * back after a resume on a new handle (with their event); a new login starts with none. */
static void attributes(void) {
    static const unsigned char odd[] = {'a', 0, 'b', 0, 0xff, 0};
    static unsigned char buf[SESSIOND_ATTR_VALUE_MAX + 2];
    sessiond_client *a, *b;
    char tok[SESSIOND_TOKEN_SIZE], key[SESSIOND_ATTR_KEY_MAX + 2];
    size_t len = 7, pad;
    int removed = 7, refused = 0, kept = 0;
    uint64_t sid;

    section("session attributes");
    a = LOGIN(cfg.addr, cfg.user, cfg.password, "attrs");
    sid = session_of(a);
    EXPECT(SESSIOND_NOT_SET, sessiond_get_attr(a, "game", buf, sizeof buf, &len));
    CHECK(len == 0);
    EXPECT(SESSIOND_OK, sessiond_set_attr(a, "game", "456", 3));
    memset(buf, 0xa5, sizeof buf);
    EXPECT(SESSIOND_OK, sessiond_get_attr(a, "game", buf, sizeof buf, &len));
    CHECK(len == 3 && memcmp(buf, "456", 3) == 0 && buf[3] == 0);
    EXPECT(SESSIOND_OK, sessiond_set_attr(a, "game", "4570", 4));
    EXPECT(SESSIOND_OK, sessiond_set_attr(a, "game", "457", 3)); /* shorter: no tail left */
    memset(buf, 0xa5, sizeof buf);
    EXPECT(SESSIOND_OK, sessiond_get_attr(a, "game", buf, 3, &len));
    CHECK(len == 3 && memcmp(buf, "457", 3) == 0 && buf[3] == 0xa5); /* no room: no NUL */
    /* a buffer too small says so, gives the size, and is not written */
    memset(buf, 0xa5, sizeof buf);
    len = 0;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_get_attr(a, "game", buf, 2, &len));
    SAYS("buf too small");
    CHECK(len == 3 && buf[0] == 0xa5);
    len = 0;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_get_attr(a, "game", NULL, 0, &len));
    CHECK(len == 3);
    /* any bytes, NUL included; an empty value is a value */
    EXPECT(SESSIOND_OK, sessiond_set_attr(a, "blob", odd, sizeof odd));
    EXPECT(SESSIOND_OK, sessiond_get_attr(a, "blob", buf, sizeof buf, &len));
    CHECK(len == sizeof odd && memcmp(buf, odd, sizeof odd) == 0);
    EXPECT(SESSIOND_OK, sessiond_set_attr(a, "empty", NULL, 0));
    len = 7;
    EXPECT(SESSIOND_OK, sessiond_get_attr(a, "empty", NULL, 0, &len));
    CHECK(len == 0);
    /* bad arguments, refused before anything is sent */
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_set_attr(a, "", "x", 1));
    SAYS("key must be 1 to 64 bytes");
    memset(key, 'k', SESSIOND_ATTR_KEY_MAX + 1);
    key[SESSIOND_ATTR_KEY_MAX + 1] = '\0';
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_set_attr(a, key, "x", 1));
    SAYS("key must be 1 to 64 bytes");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_set_attr(a, "\xff", "x", 1));
    SAYS("key is not UTF-8");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_set_attr(a, NULL, "x", 1));
    SAYS("key is NULL");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_set_attr(a, "k", NULL, 1));
    SAYS("value is NULL");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_set_attr(a, "k", buf, SESSIOND_ATTR_VALUE_MAX + 1));
    SAYS("longer than 3904");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_get_attr(a, "game", buf, sizeof buf, NULL));
    SAYS("len is NULL");
    len = 7;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_get_attr(a, "game", NULL, 4, &len));
    SAYS("buf is NULL");
    CHECK(len == 0);
    len = 7;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_get_attr(a, "", buf, sizeof buf, &len));
    CHECK(len == 0);
    removed = 7;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_remove_attr(a, key, &removed));
    CHECK(removed == 0);
    /* the session's 4096 bytes: game=457 and blob hold 4 + 3 + 4 + 6, empty 5; big the
     * longest value (3 + SESSIOND_ATTR_VALUE_MAX), pad the rest (3 + pad) */
    pad = 4096 - 22 - (3 + SESSIOND_ATTR_VALUE_MAX) - 3;
    memset(buf, 'v', sizeof buf);
    EXPECT(SESSIOND_OK, sessiond_set_attr(a, "big", buf, SESSIOND_ATTR_VALUE_MAX));
    EXPECT(SESSIOND_OK, sessiond_set_attr(a, "pad", buf, pad));
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_set_attr(a, "x", NULL, 0));
    SAYS("LIMIT_EXCEEDED");
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_set_attr(a, "pad", buf, pad + 1));
    SAYS("LIMIT_EXCEEDED");
    EXPECT(SESSIOND_NOT_SET, sessiond_get_attr(a, "x", buf, sizeof buf, &len));
    EXPECT(SESSIOND_OK, sessiond_get_attr(a, "pad", buf, sizeof buf, &len));
    CHECK(len == pad);
    EXPECT(SESSIOND_OK, sessiond_get_attr(a, "big", buf, sizeof buf, &len));
    CHECK(len == SESSIOND_ATTR_VALUE_MAX && buf[0] == 'v' && buf[len - 1] == 'v' && buf[len] == 0);
    EXPECT(SESSIOND_OK, sessiond_remove_attr(a, "big", &removed));
    CHECK(removed == 1);
    EXPECT(SESSIOND_OK, sessiond_remove_attr(a, "big", &removed));
    CHECK(removed == 0);
    EXPECT(SESSIOND_OK, sessiond_remove_attr(a, "pad", NULL));
    EXPECT(SESSIOND_OK, sessiond_remove_attr(a, "empty", NULL));
    EXPECT(SESSIOND_NOT_SET, sessiond_get_attr(a, "empty", buf, sizeof buf, &len));
    EXPECT(SESSIOND_OK, sessiond_token(a, tok, sizeof tok));
    EXPECT(SESSIOND_OK, sessiond_disconnect(a));
    sessiond_free(a);

    /* a new handle resumes the session: its attributes are there, announced by an event */
    b = OPEN(cfg.addr);
    EXPECT(SESSIOND_OK, sessiond_resume(b, tok, "attrs-again", "c99"));
    EXPECT_EVENT(b, 3000, SESSIOND_EVENT_ATTRS, 2, sid);
    EXPECT(SESSIOND_OK, sessiond_get_attr(b, "game", buf, sizeof buf, &len));
    CHECK(len == 3 && memcmp(buf, "457", 4) == 0);
    EXPECT(SESSIOND_OK, sessiond_get_attr(b, "blob", buf, sizeof buf, &len));
    CHECK(len == sizeof odd && memcmp(buf, odd, sizeof odd) == 0);
    /* 64 attributes at most (game and blob are two); one that is set may still change */
    for (int i = 0; i < 63; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        int st = sessiond_set_attr(b, key, "", 0);
        kept += st == SESSIOND_OK;
        refused += st == SESSIOND_ERR_REFUSED;
    }
    CHECK(kept == 62 && refused == 1);
    SAYS("LIMIT_EXCEEDED");
    EXPECT(SESSIOND_NOT_SET, sessiond_get_attr(b, "k62", buf, sizeof buf, &len));
    EXPECT(SESSIOND_OK, sessiond_set_attr(b, "k00", "1", 1));
    EXPECT(SESSIOND_OK, sessiond_remove_attr(b, "game", &removed));
    CHECK(removed == 1);
    EXPECT(SESSIOND_NOT_SET, sessiond_get_attr(b, "game", buf, sizeof buf, &len));
    CHECK(len == 0);
    /* they end with the session: a new login starts with none */
    EXPECT(SESSIOND_OK, sessiond_logout(b));
    EXPECT(SESSIOND_OK, sessiond_login(b, cfg.user, cfg.password, "attrs", "c99"));
    EXPECT(SESSIOND_NOT_SET, sessiond_get_attr(b, "blob", buf, sizeof buf, &len));
    EXPECT(SESSIOND_NOT_SET, sessiond_get_attr(b, "k00", buf, sizeof buf, &len));
    EXPECT(SESSIOND_OK, sessiond_logout(b));
    sessiond_free(b);
}

/* Registration, the session list and its total, new logins, revocations, the password. */
static void accounts(void) {
    sessiond_client *r, *l1, *l2, *l3, *l4, *l5, *l6, *l7;
    char long_name[SESSIOND_TEXT + 1];
    sessiond_session s[8];
    sessiond_event ev;
    size_t n = 7, total = 7, current = 0;
    uint32_t k = 7;
    uint64_t id1, id2, id3, id4, id5, id6, id7;

    section("registration");
    memset(s, 0, sizeof s); /* as in life_cycle */
    r = OPEN(cfg.addr);
    EXPECT(SESSIOND_OK, sessiond_register(r, CAROL, CAROL_PW, "carol@example.org"));
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_register(r, CAROL, CAROL_PW, "carol@example.org"));
    SAYS("USERNAME_TAKEN");
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_register(r, "dave", "short", "dave@example.org"));
    SAYS("PASSWORD_TOO_SHORT");
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_register(r, "dave", CAROL_PW, "not an address"));
    SAYS("INVALID_EMAIL");
    memset(long_name, 'a', SESSIOND_TEXT);
    long_name[SESSIOND_TEXT] = '\0';
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_register(r, long_name, CAROL_PW, "dave@example.org"));
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_register(r, "dave", CAROL_PW, NULL));
    SAYS("email is NULL");
    /* registering does not log in */
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_heartbeat(r, NULL));
    EXPECT(SESSIOND_OK, sessiond_disconnect(r));
    sessiond_free(r);

    section("session list and its total");
    l1 = LOGIN(cfg.addr, CAROL, CAROL_PW, "l1");
    l2 = LOGIN(cfg.addr, CAROL, CAROL_PW, "l2");
    l3 = LOGIN(cfg.addr, CAROL, CAROL_PW, "l3");
    id1 = session_of(l1);
    id2 = session_of(l2);
    id3 = session_of(l3);
    CHECK(id1 != 0 && id2 != 0 && id3 != 0 && id1 != id2 && id2 != id3);
    EXPECT(SESSIOND_OK, sessiond_list_sessions(l1, s, 2, &n, &total));
    CHECK(n == 2 && total == 3);
    CHECK(s[0].session_id == id1 && s[1].session_id == id2);
    EXPECT(SESSIOND_OK, sessiond_list_sessions(l1, NULL, 0, &n, &total));
    CHECK(n == 0 && total == 3);
    EXPECT(SESSIOND_OK, sessiond_list_sessions(l1, s, 8, &n, &total));
    CHECK(n == 3 && total == 3);
    for (size_t i = 0; i < n && i < 8; i++) {
        current += (size_t)s[i].current;
        CHECK(i == 0 || s[i - 1].created_ms <= s[i].created_ms);
    }
    CHECK(current == 1 && s[0].current == 1 && strcmp(s[2].client, "l3") == 0);
    EXPECT(SESSIOND_OK, sessiond_list_sessions(l1, s, 8, &n, NULL));
    CHECK(n == 3);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_list_sessions(l1, s, 8, NULL, &total));
    CHECK(total == 0);
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_list_sessions(l1, NULL, 2, &n, &total));
    CHECK(n == 0 && total == 0);
    /* l1 was told of l2's and l3's logins, in order */
    EXPECT_EVENT(l1, 0, SESSIOND_EVENT_NEW_LOGIN, 0, id2);
    EXPECT_EVENT(l1, 1000, SESSIOND_EVENT_NEW_LOGIN, 0, id3);
    EXPECT(SESSIOND_NO_EVENT, sessiond_next_event(l1, 0, &ev));

    section("revoked by another session");
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_revoke_session(l1, 0xdeadbeefu));
    SAYS("FORBIDDEN");
    EXPECT(SESSIOND_OK, sessiond_heartbeat(l1, NULL));
    EXPECT(SESSIOND_OK, sessiond_revoke_session(l1, id2));
    /* l2 learns it from its next call, then every call says the same... */
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_heartbeat(l2, NULL));
    SAYS("signed it out from another session");
    EXPECT_OVER(l2, SESSIOND_ERR_SESSION_ENDED, NULL, 0);
    /* ... and its events are still there, once each */
    EXPECT_EVENT(l2, 0, SESSIOND_EVENT_NEW_LOGIN, 0, id3);
    EXPECT_EVENT(l2, 0, SESSIOND_EVENT_REVOKED, 3, id2);
    EXPECT_DRAINED(l2, SESSIOND_ERR_SESSION_ENDED);
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_heartbeat(l2, NULL));
    SAYS("signed it out from another session");
    sessiond_free(l2);

    /* l3 learns it from its event first */
    EXPECT(SESSIOND_OK, sessiond_logout_all(l1, 0, &k));
    CHECK(k == 1);
    EXPECT_EVENT(l3, 3000, SESSIOND_EVENT_REVOKED, 3, id3);
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_heartbeat(l3, NULL));
    SAYS("signed it out from another session");
    EXPECT_OVER(l3, SESSIOND_ERR_SESSION_ENDED, NULL, 0);
    EXPECT_DRAINED(l3, SESSIOND_ERR_SESSION_ENDED);
    sessiond_free(l3);
    k = 7;
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_logout_all(l1, 4u, &k));
    SAYS("unknown flag bits 0x4");
    CHECK(k == 0);
    EXPECT(SESSIOND_OK, sessiond_list_sessions(l1, s, 8, &n, &total));
    CHECK(n == 1 && total == 1 && s[0].session_id == id1);

    section("password change");
    l4 = LOGIN(cfg.addr, CAROL, CAROL_PW, "l4");
    id4 = session_of(l4);
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_change_password(l1, "not the password", CAROL_NEW_PW, &k));
    SAYS("WRONG_PASSWORD");
    CHECK(k == 0);
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_change_password(l1, CAROL_PW, "short", &k));
    SAYS("INVALID_ARGUMENT");
    EXPECT(SESSIOND_ERR_ARGUMENT, sessiond_change_password(l1, CAROL_PW, NULL, &k));
    EXPECT(SESSIOND_OK, sessiond_change_password(l1, CAROL_PW, CAROL_NEW_PW, &k));
    CHECK(k == 1);
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_heartbeat(l4, NULL));
    SAYS("password was changed");
    EXPECT_OVER(l4, SESSIOND_ERR_SESSION_ENDED, NULL, 0);
    EXPECT_EVENT(l4, 0, SESSIOND_EVENT_REVOKED, 4, id4);
    EXPECT_DRAINED(l4, SESSIOND_ERR_SESSION_ENDED);
    sessiond_free(l4);
    l5 = OPEN(cfg.addr);
    EXPECT(SESSIOND_ERR_REFUSED, sessiond_login(l5, CAROL, CAROL_PW, "l5", "c99"));
    EXPECT(SESSIOND_OK, sessiond_login(l5, CAROL, CAROL_NEW_PW, "l5", "c99"));

    section("revoking this very session");
    id5 = session_of(l5);
    EXPECT(SESSIOND_OK, sessiond_revoke_session(l5, id5));
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_heartbeat(l5, NULL));
    SAYS("signed it out from another session");
    EXPECT_OVER(l5, SESSIOND_ERR_SESSION_ENDED, NULL, 0);
    EXPECT_EVENT(l5, 0, SESSIOND_EVENT_REVOKED, 3, id5);
    EXPECT_DRAINED(l5, SESSIOND_ERR_SESSION_ENDED);
    sessiond_free(l5);

    section("logout of every session");
    l6 = LOGIN(cfg.addr, CAROL, CAROL_NEW_PW, "l6");
    l7 = LOGIN(cfg.addr, CAROL, CAROL_NEW_PW, "l7");
    id6 = session_of(l6);
    id7 = session_of(l7);
    EXPECT(SESSIOND_OK, sessiond_logout_all(l6, SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT, &k));
    CHECK(k == 3); /* l1, l6, l7 */
    /* l6 logged itself out: not an end; it may log in again */
    EXPECT_LOGGED_OUT(l6);
    EXPECT_EVENT(l6, 0, SESSIOND_EVENT_NEW_LOGIN, 0, id7);
    EXPECT(SESSIOND_OK, sessiond_login(l6, CAROL, CAROL_NEW_PW, "l6", "c99"));
    EXPECT(SESSIOND_OK, sessiond_logout(l6));
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_heartbeat(l7, NULL));
    EXPECT_OVER(l7, SESSIOND_ERR_SESSION_ENDED, NULL, 0);
    EXPECT_EVENT(l7, 0, SESSIOND_EVENT_REVOKED, 3, id7);
    EXPECT_DRAINED(l7, SESSIOND_ERR_SESSION_ENDED);
    /* l1 heard of every login since, then of its end */
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_list_sessions(l1, s, 8, &n, &total));
    EXPECT_OVER(l1, SESSIOND_ERR_SESSION_ENDED, NULL, 0);
    EXPECT_EVENT(l1, 0, SESSIOND_EVENT_NEW_LOGIN, 0, id4);
    EXPECT_EVENT(l1, 0, SESSIOND_EVENT_NEW_LOGIN, 0, id5);
    EXPECT_EVENT(l1, 0, SESSIOND_EVENT_NEW_LOGIN, 0, id6);
    EXPECT_EVENT(l1, 0, SESSIOND_EVENT_NEW_LOGIN, 0, id7);
    EXPECT_EVENT(l1, 0, SESSIOND_EVENT_REVOKED, 3, id1);
    EXPECT_DRAINED(l1, SESSIOND_ERR_SESSION_ENDED);
    sessiond_free(l1);
    sessiond_free(l6);
    sessiond_free(l7);
}

/* A peer that is not a sessiond server: PROTOCOL, for good. */
static void garbage(void) {
    sessiond_client *g = NULL;
    section("a peer that does not speak the protocol");
    EXPECT(SESSIOND_OK, sessiond_connect(cfg.garbage_addr, TIMEOUT_MS, &g));
    EXPECT(SESSIOND_ERR_PROTOCOL, sessiond_login(g, cfg.user, cfg.password, "c-harness", "c99"));
    SAYS("bad frame from the server");
    EXPECT_OVER(g, SESSIOND_ERR_PROTOCOL, NULL, 0);
    EXPECT_DRAINED(g, SESSIOND_ERR_PROTOCOL);
    sessiond_free(g);
}

/* A server that stops answering, then one that is killed: CLOSED, for good. */
static void control_server(void) {
    sessiond_client *a, *k, *c;
    char tok_a[SESSIOND_TOKEN_SIZE], tok_k[SESSIOND_TOKEN_SIZE];
    sessiond_event ev;
    uint64_t sid_a, sid_k;

    section("a server that stops answering");
    a = LOGIN(cfg.control_addr, cfg.control_user, cfg.control_password, "c-harness");
    EXPECT(SESSIOND_OK, sessiond_token(a, tok_a, sizeof tok_a));
    sid_a = session_of(a);
    control("stop");
    EXPECT(SESSIOND_ERR_CLOSED, sessiond_next_event(a, 20000, &ev));
    SAYS("stopped answering heartbeats");
    EXPECT_OVER(a, SESSIOND_ERR_CLOSED, tok_a, sid_a);
    EXPECT_DRAINED(a, SESSIOND_ERR_CLOSED);
    sessiond_free(a);
    control("cont");

    section("a killed server");
    k = LOGIN(cfg.control_addr, cfg.control_user, cfg.control_password, "c-harness");
    EXPECT(SESSIOND_OK, sessiond_token(k, tok_k, sizeof tok_k));
    sid_k = session_of(k);
    control("kill");
    EXPECT(SESSIOND_ERR_CLOSED, sessiond_heartbeat(k, NULL));
    EXPECT_OVER(k, SESSIOND_ERR_CLOSED, tok_k, sid_k);
    EXPECT_DRAINED(k, SESSIOND_ERR_CLOSED);
    sessiond_free(k);
    /* nothing listens there any more */
    c = (sessiond_client *)(void *)&ev;
    EXPECT(SESSIOND_ERR_NETWORK, cfg.ca != NULL
                                     ? sessiond_connect_tls(cfg.control_addr, "localhost",
                                                            cfg.ca, 0, TIMEOUT_MS, &c)
                                     : sessiond_connect(cfg.control_addr, TIMEOUT_MS, &c));
    CHECK(c == NULL);
}

/* Sessions that expire (logged in at the start, e2 before e1, checked at the end). */
static void expiry(sessiond_client *e1, uint64_t sid1, sessiond_client *e2, uint64_t sid2) {
    section("expired sessions");
    /* e1 learns it from its event first */
    EXPECT_EVENT(e1, 10000, SESSIOND_EVENT_EXPIRED, 2, sid1);
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_heartbeat(e1, NULL));
    SAYS("maximum lifetime");
    EXPECT_OVER(e1, SESSIOND_ERR_SESSION_ENDED, NULL, 0);
    EXPECT_DRAINED(e1, SESSIOND_ERR_SESSION_ENDED);
    /* e2 from its next call; its events are kept: e1's login, then its expiry */
    EXPECT(SESSIOND_ERR_SESSION_ENDED, sessiond_heartbeat(e2, NULL));
    SAYS("maximum lifetime");
    EXPECT_OVER(e2, SESSIOND_ERR_SESSION_ENDED, NULL, 0);
    EXPECT_EVENT(e2, 0, SESSIOND_EVENT_NEW_LOGIN, 0, sid1);
    EXPECT_EVENT(e2, 0, SESSIOND_EVENT_EXPIRED, 2, sid2);
    EXPECT_DRAINED(e2, SESSIOND_ERR_SESSION_ENDED);
    sessiond_free(e1);
    sessiond_free(e2);
}

int main(int argc, char **argv) {
    sessiond_client *e1 = NULL, *e2 = NULL;
    uint64_t sid1 = 0, sid2 = 0;

    if (argc == 2 && strcmp(argv[1], "--layout") == 0) {
        print_layout();
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: %s HOST:PORT USER PASSWORD (or --layout)\n", argv[0]);
        return 64;
    }
    cfg.addr = argv[1];
    cfg.user = argv[2];
    cfg.password = argv[3];
    cfg.ca = getenv("SESSIOND_CA");
    cfg.other_ca = getenv("SESSIOND_OTHER_CA");
    cfg.expiry_addr = getenv("SESSIOND_EXPIRY_ADDR");
    cfg.garbage_addr = getenv("SESSIOND_GARBAGE_ADDR");
    cfg.control_addr = getenv("SESSIOND_CONTROL_ADDR");
    cfg.control_user = getenv("SESSIOND_CONTROL_USER");
    cfg.control_password = getenv("SESSIOND_CONTROL_PASSWORD");
    printf("transport: %s\n", cfg.ca != NULL ? "TLS" : "TCP");

    /* Sessions that will have expired by the end of the run: e2 first, so that once e1's
     * expiry has arrived, e2's has been sent too. */
    if (cfg.expiry_addr != NULL) {
        e2 = LOGIN(cfg.expiry_addr, cfg.user, cfg.password, "e2");
        e1 = LOGIN(cfg.expiry_addr, cfg.user, cfg.password, "e1");
        sid1 = session_of(e1);
        sid2 = session_of(e2);
    }
    pure_calls();
    bad_arguments();
    if (cfg.ca != NULL) {
        tls_refusals();
    }
    life_cycle();
    attributes();
    accounts();
    if (cfg.garbage_addr != NULL) {
        garbage();
    } else {
        skipped("a peer that does not speak the protocol", "SESSIOND_GARBAGE_ADDR");
    }
    if (cfg.control_addr != NULL && cfg.control_user != NULL && cfg.control_password != NULL) {
        control_server();
    } else {
        skipped("stopped and killed servers", "SESSIOND_CONTROL_ADDR, _USER, _PASSWORD");
    }
    if (cfg.expiry_addr != NULL) {
        expiry(e1, sid1, e2, sid2);
    } else {
        skipped("expired sessions", "SESSIOND_EXPIRY_ADDR");
    }
    printf("%d checks, %d failed\n", checks, failed);
    return failed == 0 ? 0 : 1;
}
