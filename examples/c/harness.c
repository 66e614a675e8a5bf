/*
 * A C99 test harness for sessiond through its C ABI (sessiond.h): logs in, heartbeats,
 * lists the sessions, logs out and disconnects, checking every status.
 *
 * Build (from the repository root, after `cargo build`):
 *   cc -std=c99 -Wall -Wextra -o harness examples/c/harness.c -Iexamples/c \
 *      target/debug/libsessiond.a -lpthread -ldl -lm
 * Run:
 *   ./harness 127.0.0.1:7450 alice 'password'
 *   SESSIOND_CA=ca.pem ./harness localhost:7450 alice 'password'     (over TLS)
 * Exit status: 0 when every step succeeded, otherwise the failing call's status code.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessiond.h"

#define CHECK(call)                                                                    \
    do {                                                                               \
        int st_ = (call);                                                              \
        if (st_ != SESSIOND_OK) {                                                      \
            fprintf(stderr, "FAIL %s: status %d: %s\n", #call, st_, sessiond_last_error()); \
            sessiond_free(client);                                                     \
            return st_;                                                                \
        }                                                                              \
    } while (0)

int main(int argc, char **argv) {
    sessiond_client *client = NULL;
    if (argc != 4) {
        fprintf(stderr, "usage: %s HOST:PORT USER PASSWORD\n", argv[0]);
        return 64;
    }
    /* Bad arguments are refused with a status, not a crash. */
    if (sessiond_heartbeat(NULL, NULL) != SESSIOND_ERR_ARGUMENT) {
        fprintf(stderr, "FAIL: NULL handle not refused\n");
        return 1;
    }

    /* TLS when SESSIOND_CA names a CA file (the certificate must be for "localhost"). */
    const char *ca = getenv("SESSIOND_CA");
    if (ca != NULL) {
        CHECK(sessiond_connect_tls(argv[1], "localhost", ca, 0, 5000, &client));
    } else {
        CHECK(sessiond_connect(argv[1], 5000, &client));
    }
    printf("connected\n");
    CHECK(sessiond_login(client, argv[2], argv[3], "c-harness", "c99"));
    char token[65];
    CHECK(sessiond_token(client, token, sizeof token));
    printf("logged in, token has %zu hex digits\n", strlen(token));

    for (int i = 0; i < 3; i++) {
        uint64_t server_time = 0;
        CHECK(sessiond_heartbeat(client, &server_time));
        if (server_time == 0) {
            fprintf(stderr, "FAIL: heartbeat without server time\n");
            sessiond_free(client);
            return 1;
        }
    }
    printf("3 heartbeats acknowledged\n");

    sessiond_session sessions[8];
    size_t count = 0;
    CHECK(sessiond_list_sessions(client, sessions, 8, &count));
    for (size_t i = 0; i < count; i++) {
        printf("session %016" PRIx64 " %s %s %s%s\n", sessions[i].session_id,
               sessions[i].client, sessions[i].platform, sessions[i].address,
               sessions[i].current ? " (current)" : "");
    }
    printf("%zu session(s)\n", count);

    sessiond_event ev;
    int st = sessiond_next_event(client, 200, &ev);
    if (st != SESSIOND_NO_EVENT && st != SESSIOND_OK) {
        fprintf(stderr, "FAIL sessiond_next_event: status %d: %s\n", st, sessiond_last_error());
        sessiond_free(client);
        return st;
    }

    CHECK(sessiond_logout(client));
    printf("logged out\n");
    /* After the logout the token is gone: a heartbeat is refused, not a crash. */
    if (sessiond_heartbeat(client, NULL) != SESSIOND_ERR_ARGUMENT) {
        fprintf(stderr, "FAIL: heartbeat after logout not refused\n");
        sessiond_free(client);
        return 1;
    }
    CHECK(sessiond_disconnect(client));
    printf("disconnected\n");
    if (sessiond_logout(client) != SESSIOND_ERR_CLOSED) {
        fprintf(stderr, "FAIL: call after disconnect not refused\n");
        sessiond_free(client);
        return 1;
    }
    sessiond_free(client);
    printf("ok\n");
    return 0;
}
