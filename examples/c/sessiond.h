/*
 * sessiond.h: the C ABI of the sessiond client (src/ffi.rs).
 *
 * Link against the static library (target/<profile>/libsessiond.a, plus -lpthread -ldl -lm)
 * or the shared one (libsessiond.so). C99.
 *
 * Conventions:
 *   - Every function but sessiond_last_error and sessiond_free returns a status below;
 *     SESSIOND_OK is 0. On failure, sessiond_last_error() describes it.
 *   - Strings passed in are NUL-terminated UTF-8, borrowed only for the call.
 *   - Ownership: a handle is created by sessiond_connect and released by sessiond_free,
 *     exactly once, after which it must not be used. Every other buffer (token, session
 *     array, event) belongs to the caller, who passes its capacity; the library never
 *     keeps a pointer to it after the call returns.
 *   - The string returned by sessiond_last_error belongs to the library and stays valid
 *     until the next sessiond_* call on the same thread. Errors are kept per thread.
 *   - A handle must not be used by two threads at once.
 *   - No function unwinds or aborts on bad input: NULL where a pointer is required gives
 *     SESSIOND_ERR_ARGUMENT; an internal failure gives SESSIOND_ERR_PANIC.
 *   - While a call waits for the server (including sessiond_next_event), the client sends
 *     the heartbeats the server asked for; a server that stops answering them makes the
 *     call fail with SESSIOND_ERR_TIMEOUT.
 */
#ifndef SESSIOND_H
#define SESSIOND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
#define SESSIOND_OK                0
#define SESSIOND_ERR_ARGUMENT      1 /* NULL pointer, bad UTF-8, buffer too small, not logged in */
#define SESSIOND_ERR_NETWORK       2 /* connect failed or the connection broke */
#define SESSIOND_ERR_TIMEOUT       3 /* no reply in time, or the server stopped answering heartbeats */
#define SESSIOND_ERR_REFUSED       4 /* the server said no: login failure, FORBIDDEN, ... */
#define SESSIOND_ERR_SESSION_ENDED 5 /* the session was revoked or expired, or a resumed token is dead */
#define SESSIOND_ERR_PROTOCOL      6 /* the server sent something this client does not understand */
#define SESSIOND_ERR_PANIC         7 /* internal error, caught at the boundary */
#define SESSIOND_NO_EVENT          8 /* sessiond_next_event: nothing arrived in time */
#define SESSIOND_ERR_CLOSED        9 /* the connection is closed (disconnected, or closed by the server) */
#define SESSIOND_ERR_TLS          10 /* TLS failed: untrusted certificate, wrong name, or not a TLS server */

/* Event kinds (sessiond_event.kind). */
#define SESSIOND_EVENT_NEW_LOGIN    1 /* another device logged in to this account */
#define SESSIOND_EVENT_REVOKED      2 /* this session was revoked; reason = protocol.md 5.18 code */
#define SESSIOND_EVENT_EXPIRED      3 /* this session expired; reason = 1 idle, 2 absolute */
#define SESSIOND_EVENT_DISCONNECTED 4 /* the server closed the connection; reason = protocol.md 5.9 code */
#define SESSIOND_EVENT_OTHER        5
#define SESSIOND_EVENT_SHUTDOWN     6 /* the server is stopping; reconnect later and resume */

#define SESSIOND_TEXT 65 /* 64 bytes of UTF-8 and a NUL */

typedef struct sessiond_client sessiond_client; /* opaque */

typedef struct {
    uint64_t session_id;
    int current;   /* 1: the session of this connection */
    int connected; /* 1: a connection is bound to it now */
    uint64_t created_ms;     /* Unix milliseconds */
    uint64_t last_active_ms;
    uint64_t expires_ms;
    char client[SESSIOND_TEXT];
    char platform[SESSIOND_TEXT];
    char address[SESSIOND_TEXT];
} sessiond_session;

typedef struct {
    int kind;
    uint32_t reason;
    uint64_t session_id;
    char detail[257]; /* plain words, NUL-terminated */
} sessiond_event;

/* The last failure's message on this thread ("" if none); owned by the library. */
const char *sessiond_last_error(void);

/* Connects to "host:port" within timeout_ms (also the reply timeout of later calls).
 * On success *out is a new handle to release with sessiond_free. */
int sessiond_connect(const char *addr, uint32_t timeout_ms, sessiond_client **out);

/* Flag for sessiond_connect_tls: do not check the certificate. Testing only: anyone on
 * the path could then read passwords and tokens. */
#define SESSIOND_TLS_INSECURE_SKIP_VERIFY 1u

/* Connects with TLS, checking the server's certificate for server_name against the CA
 * certificates in the PEM file ca_file (NULL: the system's roots). SESSIOND_ERR_TLS when
 * the certificate is not trusted. On success *out is a new handle for sessiond_free. */
int sessiond_connect_tls(const char *addr, const char *server_name, const char *ca_file,
                         uint32_t flags, uint32_t timeout_ms, sessiond_client **out);

/* Logs in. SESSIOND_ERR_REFUSED with the reason in sessiond_last_error() on failure. */
int sessiond_login(sessiond_client *c, const char *username, const char *password,
                   const char *client_name, const char *platform);

/* Resumes a session from its token (64 hex digits, as sessiond_token writes it). */
int sessiond_resume(sessiond_client *c, const char *token_hex, const char *client_name,
                    const char *platform);

/* Writes the session's token as 64 hex digits and a NUL into buf (len >= 65). */
int sessiond_token(sessiond_client *c, char *buf, size_t len);

/* One HEARTBEAT; *server_time_ms (may be NULL) receives the server's clock. */
int sessiond_heartbeat(sessiond_client *c, uint64_t *server_time_ms);

/* Fills up to cap entries of out with the account's sessions; *count = entries written. */
int sessiond_list_sessions(sessiond_client *c, sessiond_session *out, size_t cap, size_t *count);

/* Ends the session (LOGOUT_REQUEST); the connection stays open for another login. */
int sessiond_logout(sessiond_client *c);

/* Graceful disconnect (the session survives). The handle must still be freed. */
int sessiond_disconnect(sessiond_client *c);

/* Waits up to timeout_ms for a server push: SESSIOND_OK with *ev filled, or
 * SESSIOND_NO_EVENT. */
int sessiond_next_event(sessiond_client *c, uint32_t timeout_ms, sessiond_event *ev);

/* Releases a handle (closing its connection if open). NULL is ignored. */
void sessiond_free(sessiond_client *c);

#ifdef __cplusplus
}
#endif

#endif /* SESSIOND_H */
