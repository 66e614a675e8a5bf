/*
 * sessiond.h: the C ABI of the sessiond client (src/ffi.rs). tests/c_harness.rs checks
 * that the constants, the functions and the struct layouts here are the library's.
 *
 * Link against the static library (target/<profile>/libsessiond.a, plus -lpthread -ldl -lm)
 * or the shared one (libsessiond.so). C99.
 *
 * Conventions:
 *   - Every function returns a status below (SESSIOND_OK is 0) except sessiond_free and
 *     the four that cannot fail: sessiond_last_error, sessiond_version,
 *     sessiond_status_name and sessiond_status_message. On failure, sessiond_last_error()
 *     describes it; a call that succeeds leaves it as it was.
 *   - Strings passed in are NUL-terminated UTF-8, borrowed only for the call. Attribute
 *     values are bytes (a pointer and a length), NUL included.
 *   - Out-parameters are cleared first: after a failure, each one that is not NULL holds
 *     NULL, 0, an empty string or an all-zero struct (never a stale or partial value).
 *     The exceptions: sessiond_list_sessions's array and sessiond_get_attr's buffer, which
 *     are not written at all, and sessiond_get_attr's *len after a buffer too small, which
 *     holds the size needed.
 *   - Ownership: a handle is created by sessiond_connect or sessiond_connect_tls and
 *     released by sessiond_free, exactly once, after which it must not be used. Every
 *     other buffer (token, session array, event, identity) belongs to the caller, who
 *     passes its capacity; the library never keeps a pointer to it after the call returns.
 *   - The string returned by sessiond_last_error belongs to the library and stays valid
 *     until the next sessiond_* call on the same thread. Errors are kept per thread. The
 *     strings of sessiond_version, sessiond_status_name and sessiond_status_message are
 *     static.
 *   - A handle must not be used by two threads at once.
 *   - No function unwinds or aborts on bad input: NULL where a pointer is required gives
 *     SESSIOND_ERR_ARGUMENT (argument checks come before anything else); an internal
 *     failure gives SESSIOND_ERR_PANIC.
 *   - Timeouts: timeout_ms of sessiond_connect and sessiond_connect_tls bounds the
 *     connection and then every call's wait for its reply; 0 is refused
 *     (SESSIOND_ERR_ARGUMENT). sessiond_next_event's own timeout_ms may be 0: then it
 *     does not wait, and reports only what has already arrived.
 *   - While a call waits for the server (including sessiond_next_event), the library
 *     sends the heartbeats the server asked for; a server that stops answering them ends
 *     the connection (SESSIOND_ERR_CLOSED, below).
 *
 * The end of a connection: once a handle's connection is over, the handle answers every
 * later call (but sessiond_free) with one status, and sessiond_last_error with the same
 * words, however often it is asked:
 *   - SESSIOND_ERR_SESSION_ENDED when the server ended the session (SESSION_REVOKED:
 *     another login, a revocation from another session or by an administrator, a password
 *     change elsewhere, sessiond_revoke_session of this very session; SESSION_EXPIRED).
 *     sessiond_token and sessiond_whoami answer it too: the token is dead. Log in again
 *     on a new handle.
 *   - SESSIOND_ERR_PROTOCOL when the server sent bytes that are not sessiond frames.
 *   - SESSIOND_ERR_CLOSED for any other end: sessiond_disconnect; the server closed the
 *     connection (DISCONNECT_ACK, a fatal error); the connection was lost (EOF or a reset:
 *     a killed server reads the same over TCP and over TLS); the server stopped answering
 *     heartbeats.
 *   For PROTOCOL and CLOSED the session may live on: sessiond_token and sessiond_whoami
 *   still answer what the handle had (SESSIOND_OK), so the token can be resumed on a new
 *   handle; with no session they answer the end's status too.
 *   The call during which the connection ended answers the same status, unless it had its
 *   own answer first: sessiond_revoke_session of this session and sessiond_disconnect
 *   answer SESSIOND_OK, sessiond_resume of a session in use elsewhere answers
 *   SESSIOND_ERR_REFUSED. sessiond_next_event first delivers, once each, the pushes that
 *   arrived before the end (among them the REVOKED, EXPIRED or DISCONNECTED event that
 *   ended it), even when another call has already answered the end; then it answers the
 *   end's status too.
 *   "Not logged in" (SESSIOND_ERR_ARGUMENT) is only for an open handle that never logged
 *   in, or that this handle logged out (sessiond_logout, sessiond_logout_all with
 *   SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT).
 */
#ifndef SESSIOND_H
#define SESSIOND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library version this header describes, and the wire protocol version (protocol.md).
 * sessiond_version() returns the library's own: compare them to catch a mismatch. */
#define SESSIOND_VERSION "0.1.0"
#define SESSIOND_PROTOCOL_VERSION 1

/* Status codes (sessiond_status_name and sessiond_status_message describe them). */
#define SESSIOND_OK                0
#define SESSIOND_ERR_ARGUMENT      1 /* NULL pointer, bad UTF-8, buffer too small, timeout 0, unknown flag bits, not logged in */
#define SESSIOND_ERR_NETWORK       2 /* the connection could not be made (refused, unreachable, name not resolved) */
#define SESSIOND_ERR_TIMEOUT       3 /* no reply (or no connection) in time; the connection stays open */
#define SESSIOND_ERR_REFUSED       4 /* the server said no: login failure, FORBIDDEN, WRONG_PASSWORD, ... */
#define SESSIOND_ERR_SESSION_ENDED 5 /* the server ended the session (revoked, expired), or a resumed token is dead */
#define SESSIOND_ERR_PROTOCOL      6 /* the server sent something that is not the sessiond protocol */
#define SESSIOND_ERR_PANIC         7 /* internal error, caught at the boundary */
#define SESSIOND_NO_EVENT          8 /* sessiond_next_event: nothing arrived in time */
#define SESSIOND_ERR_CLOSED        9 /* the connection is over: disconnected, closed by the server, lost, given up */
#define SESSIOND_ERR_TLS          10 /* TLS failed: untrusted certificate, wrong name, not a TLS server, bad ca_file */
#define SESSIOND_NOT_SET          11 /* sessiond_get_attr: no attribute of that key (an answer, not a failure) */

/* Event kinds (sessiond_event.kind; 0: no event). */
#define SESSIOND_EVENT_NEW_LOGIN    1 /* another device logged in to this account */
#define SESSIOND_EVENT_REVOKED      2 /* this session was revoked; reason = protocol.md 5.18 code */
#define SESSIOND_EVENT_EXPIRED      3 /* this session expired; reason = 1 idle, 2 absolute */
#define SESSIOND_EVENT_DISCONNECTED 4 /* the server closed the connection; reason = protocol.md 5.9 code */
#define SESSIOND_EVENT_OTHER        5 /* any other frame sent unasked (a late reply, ...); detail names it */
#define SESSIOND_EVENT_SHUTDOWN     6 /* the server is stopping; reconnect later and resume */
#define SESSIOND_EVENT_ATTRS        7 /* after sessiond_resume: the session's attributes came back; reason = how many, detail = their keys */

/* Roles (sessiond_identity.role), protocol.md 5.2. */
#define SESSIOND_ROLE_USER  0
#define SESSIOND_ROLE_ADMIN 1

/* Flags: sessiond_connect_tls. Do not check the certificate. Testing only: anyone on
 * the path could then read passwords and tokens. */
#define SESSIOND_TLS_INSECURE_SKIP_VERIFY 1u
/* Flags: sessiond_logout_all. End this handle's session too. */
#define SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT 1u

#define SESSIOND_TEXT       65 /* text fields: 64 bytes of UTF-8 and a NUL */
#define SESSIOND_DETAIL    257 /* sessiond_event.detail: 256 bytes of UTF-8 and a NUL */
#define SESSIOND_TOKEN_SIZE 65 /* sessiond_token's buffer: 64 hex digits and a NUL */
#define SESSIOND_ATTR_KEY_MAX   64   /* an attribute key: 1 to 64 bytes of UTF-8 */
#define SESSIOND_ATTR_VALUE_MAX 3904 /* an attribute value: 0 to 3904 bytes of anything */

typedef struct sessiond_client sessiond_client; /* opaque */

/* One session of the account (sessiond_list_sessions). Text is NUL-terminated, cut to fit. */
typedef struct {
    uint64_t session_id;
    int current;   /* 1: the session of this connection */
    int connected; /* 1: a connection is bound to it now */
    uint64_t created_ms;     /* Unix milliseconds */
    uint64_t last_active_ms; /* the last valid request with its token */
    uint64_t expires_ms;     /* absolute expiry */
    char client[SESSIOND_TEXT];   /* as given at login (or the last resume that gave one) */
    char platform[SESSIOND_TEXT];
    char address[SESSIOND_TEXT];  /* "ip:port" of the login or last resume */
} sessiond_session;

/* Who a handle is logged in as (sessiond_whoami): the login's or resume's SessionInfo. */
typedef struct {
    uint64_t session_id;
    uint64_t user_id;
    int role;                     /* SESSIOND_ROLE_* */
    char username[SESSIOND_TEXT];
    uint64_t user_created_ms;     /* Unix milliseconds */
    uint64_t last_login_ms;       /* the account's previous login, 0 if none */
    uint64_t session_created_ms;
    uint64_t session_expires_ms;  /* absolute expiry */
    uint32_t idle_expiry_ms;      /* the session ends after this long without a request */
    uint32_t heartbeat_interval_ms;
    uint32_t heartbeat_timeout_ms;
} sessiond_identity;

/* A push from the server (sessiond_next_event). */
typedef struct {
    int kind;            /* SESSIOND_EVENT_* */
    uint32_t reason;     /* the protocol's reason code, 0 if none */
    uint64_t session_id; /* the session it is about (the new one for NEW_LOGIN), 0 if none */
    char detail[SESSIOND_DETAIL]; /* plain words, NUL-terminated */
} sessiond_event;

/* The last failure's message on this thread ("" if none); owned by the library. */
const char *sessiond_last_error(void);

/* The library's version (static; compare with SESSIOND_VERSION). *protocol (may be NULL)
 * receives the protocol version it speaks (compare with SESSIOND_PROTOCOL_VERSION). */
const char *sessiond_version(uint32_t *protocol);

/* The constant's name of a status ("SESSIOND_ERR_CLOSED"), or "unknown". Static. */
const char *sessiond_status_name(int status);

/* What a status means, in a few words ("not a sessiond status" for other values). Static. */
const char *sessiond_status_message(int status);

/* Connects to "host:port" within timeout_ms (also the reply timeout of later calls; 0 is
 * refused). *out: a new handle to release with sessiond_free; NULL on failure.
 * NETWORK: refused, unreachable, not resolved; TIMEOUT: no connection within timeout_ms. */
int sessiond_connect(const char *addr, uint32_t timeout_ms, sessiond_client **out);

/* Connects with TLS, checking the server's certificate for server_name against the CA
 * certificates in the PEM file ca_file (NULL: the system's roots). flags: 0 or
 * SESSIOND_TLS_INSECURE_SKIP_VERIFY; other bits give SESSIOND_ERR_ARGUMENT.
 * SESSIOND_ERR_TLS when the certificate is not trusted, the name does not match, the peer
 * does not speak TLS, or ca_file cannot be loaded. *out as for sessiond_connect. */
int sessiond_connect_tls(const char *addr, const char *server_name, const char *ca_file,
                         uint32_t flags, uint32_t timeout_ms, sessiond_client **out);

/* Creates an account (before logging in; the handle stays logged out). email is a contact
 * address ("name@domain.tld", protocol.md 5.15). SESSIOND_ERR_REFUSED with the reason in
 * sessiond_last_error() when the server says no (USERNAME_TAKEN, PASSWORD_TOO_SHORT,
 * INVALID_EMAIL, REGISTRATION_CLOSED, ...). */
int sessiond_register(sessiond_client *c, const char *username, const char *password,
                      const char *email);

/* Logs in. SESSIOND_ERR_REFUSED with the reason in sessiond_last_error() on failure (the
 * handle stays open for another attempt). */
int sessiond_login(sessiond_client *c, const char *username, const char *password,
                   const char *client_name, const char *platform);

/* Resumes a session from its token (64 hex digits, as sessiond_token writes it).
 * SESSIOND_ERR_SESSION_ENDED: the token is dead (this handle stays open: log in on it).
 * SESSIOND_ERR_REFUSED: the session is in use on another connection; the server closes
 * this one (later calls answer SESSIOND_ERR_CLOSED); the token stays valid.
 * A resumed session that holds attributes brings a SESSIOND_EVENT_ATTRS event with it. */
int sessiond_resume(sessiond_client *c, const char *token_hex, const char *client_name,
                    const char *platform);

/* Writes the session's token as 64 hex digits and a NUL into buf (len >= SESSIOND_TOKEN_SIZE).
 * Also after a CLOSED or PROTOCOL end (see above), to resume it elsewhere.
 * SESSIOND_ERR_ARGUMENT when not logged in. On failure buf holds "" (when len > 0). */
int sessiond_token(sessiond_client *c, char *buf, size_t len);

/* Who the handle is logged in as. Also after a CLOSED or PROTOCOL end (see above).
 * SESSIOND_ERR_ARGUMENT when not logged in. On failure *out is all zero. */
int sessiond_whoami(sessiond_client *c, sessiond_identity *out);

/* One HEARTBEAT; *server_time_ms (may be NULL) receives the server's clock (0 on failure). */
int sessiond_heartbeat(sessiond_client *c, uint64_t *server_time_ms);

/* Fills out (an array of cap entries; NULL allowed when cap is 0) with the first cap of
 * the account's live sessions, oldest first, reading as many pages (100 each) as it takes.
 * *count = entries written; *total (may be NULL) = live sessions in all: *count < *total
 * means out was too small. On failure *count and *total are 0 and out is not written. */
int sessiond_list_sessions(sessiond_client *c, sessiond_session *out, size_t cap,
                           size_t *count, size_t *total);

/* Ends one of the account's sessions (a session_id from sessiond_list_sessions).
 * SESSIOND_ERR_REFUSED (FORBIDDEN) when it is not one of them. Revoking this handle's own
 * session answers SESSIOND_OK; the server then ends it (later: SESSIOND_ERR_SESSION_ENDED). */
int sessiond_revoke_session(sessiond_client *c, uint64_t session_id);

/* Ends the account's other sessions; with SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT in flags
 * this one too (the handle is then logged out, as after sessiond_logout). Other flag bits
 * give SESSIOND_ERR_ARGUMENT. *ended (may be NULL) = sessions ended (0 on failure). */
int sessiond_logout_all(sessiond_client *c, uint32_t flags, uint32_t *ended);

/* Changes the account's password; its other sessions end, this one stays. *revoked (may
 * be NULL) = sessions ended (0 on failure). SESSIOND_ERR_REFUSED: WRONG_PASSWORD, or a new
 * password the server does not accept (INVALID_ARGUMENT: too short). */
int sessiond_change_password(sessiond_client *c, const char *old_password,
                             const char *new_password, uint32_t *revoked);

/* Session attributes (protocol.md 5.39 to 5.42): a small map kept in the session, durable,
 * ended with it (a new login starts with none), found again by sessiond_resume on any
 * handle. A session holds at most 64 of them and 4096 bytes of keys and values together.
 * Keys are 1 to SESSIOND_ATTR_KEY_MAX bytes of UTF-8; others give SESSIOND_ERR_ARGUMENT. */

/* Sets attribute key to the len bytes at value (value may be NULL when len is 0),
 * replacing its value; durable once it returns. len over SESSIOND_ATTR_VALUE_MAX gives
 * SESSIOND_ERR_ARGUMENT. SESSIOND_ERR_REFUSED, with LIMIT_EXCEEDED in sessiond_last_error(),
 * when the session would hold more than 64 attributes or 4096 bytes (nothing changed). */
int sessiond_set_attr(sessiond_client *c, const char *key, const void *value, size_t len);

/* Copies attribute key's value into buf (cap bytes) and its size into *len; when
 * cap > *len a NUL follows (handy for text; a value may hold NULs of its own).
 * SESSIOND_NOT_SET: the session holds no such key (*len = 0; not a failure, so
 * sessiond_last_error() is left as it was). cap below the value's size:
 * SESSIOND_ERR_ARGUMENT ("buf too small") with *len = the size needed; buf may be NULL
 * with cap 0 to ask for it. buf is written only on SESSIOND_OK; after any other answer
 * (but "too small") *len is 0. Each call asks the server (ATTR_GET). */
int sessiond_get_attr(sessiond_client *c, const char *key, void *buf, size_t cap, size_t *len);

/* Removes attribute key (durable once it returns). *removed (may be NULL) = 1 if it was
 * set, 0 if not (0 on failure). */
int sessiond_remove_attr(sessiond_client *c, const char *key, int *removed);

/* Ends the session (LOGOUT_REQUEST); the connection stays open for another login. */
int sessiond_logout(sessiond_client *c);

/* Graceful disconnect: the session survives (sessiond_token still gives it, to resume on
 * a new handle); later calls answer SESSIOND_ERR_CLOSED. The handle must still be freed. */
int sessiond_disconnect(sessiond_client *c);

/* Waits up to timeout_ms (0: no waiting) for a server push: SESSIOND_OK with *ev filled,
 * or SESSIOND_NO_EVENT (*ev all zero, as on failure). After the connection's end, the
 * pushes that came before it are delivered first, then the end's status (see above). */
int sessiond_next_event(sessiond_client *c, uint32_t timeout_ms, sessiond_event *ev);

/* Releases a handle (closing its connection if open). NULL is ignored. */
void sessiond_free(sessiond_client *c);

#ifdef __cplusplus
}
#endif

#endif /* SESSIOND_H */
