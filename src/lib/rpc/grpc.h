/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A single-threaded gRPC client over a unix socket (libnghttp2 +
 * protobuf-c).  Why not the gRPC C core: it starts threads, and a
 * multithreaded process cannot setns(CLONE_NEWNS) -- cryo must.
 *
 * All I/O happens inside the calls below (poll-based, with deadlines);
 * nothing runs in the background.  Several streams may be open on one
 * connection; frames for any of them are processed whichever one is being
 * waited on.  A connection and its streams must be used from one thread.
 */
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/grpc-wire.h"
#include "util/cleanup.h"
#include "util/error.h"

#define GRPC_NO_TIMEOUT (-1)
/* Receive cap per message.  containerd's own server cap is 16 MiB. */
#define GRPC_DEFAULT_MAX_MESSAGE (16u << 20)

struct grpc_conn;
struct grpc_stream;

/*
 * Connects to a gRPC server on a unix socket and completes the HTTP/2
 * handshake (our preface + SETTINGS, the server's SETTINGS) within
 * timeout_ms.  `label` names the server in error messages ("containerd"):
 * "cannot connect to containerd at /run/containerd/containerd.sock:
 * Connection refused".
 */
int grpc_connect(const char *socket_path, const char *label, int timeout_ms, struct grpc_conn **ret,
                 struct cryo_error **err);
/* Free all streams of a connection before the connection. */
void grpc_conn_free(struct grpc_conn *conn);
static inline void grpc_conn_freep(struct grpc_conn **c) {
        if (*c)
                grpc_conn_free(*c);
}
#define _cleanup_grpc_conn_ _cleanup_(grpc_conn_freep)

void grpc_conn_set_max_message(struct grpc_conn *conn, size_t max_bytes);
const char *grpc_conn_address(const struct grpc_conn *conn);

/*
 * Extra request metadata: a NULL-terminated list of name/value pairs,
 * names in lower case, e.g.
 *   const char *md[] = {"containerd-namespace", "default", NULL};
 * May be NULL.
 */

/*
 * One unary call.  `path` is "/<package>.<Service>/<Method>".  On success
 * *resp is a message of resp_desc (free it with
 * protobuf_c_message_free_unpacked(*resp, NULL)).  On a non-OK status the
 * result is -errno (grpc_status_to_errno) and the error message is the
 * server's grpc-message, prefixed with "<label> <Service>.<Method>"; the
 * raw status is in err->detail ("gRPC status NOT_FOUND (5)").
 */
int grpc_unary(struct grpc_conn *conn, const char *path, const char *const *metadata,
               const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
               ProtobufCMessage **resp, int timeout_ms, struct cryo_error **err);

/*
 * Streaming calls.  grpc_stream_open() sends the request headers; the
 * timeout covers the whole call (it is sent as grpc-timeout and the stream
 * is cancelled when it expires).  For a server-streaming call, send one
 * message with grpc_stream_send() + grpc_stream_close_send(), then
 * grpc_stream_recv() until it returns 0.
 */
int grpc_stream_open(struct grpc_conn *conn, const char *path, const char *const *metadata, int timeout_ms,
                     struct grpc_stream **ret, struct cryo_error **err);
/* Queues one message and writes until it has been handed to the socket
 * (within flow control), processing incoming frames meanwhile. */
int grpc_stream_send(struct grpc_stream *s, const ProtobufCMessage *msg, struct cryo_error **err);
/* Half-closes our side (END_STREAM). */
int grpc_stream_close_send(struct grpc_stream *s, struct cryo_error **err);
/*
 * Returns 1 with the next message in *msg, 0 when the server ended the
 * stream with status OK, or -errno for a non-OK status, a broken
 * connection, or the call's deadline (-ETIMEDOUT).
 * grpc_stream_recv_wait() additionally gives up after wait_ms and returns
 * -EAGAIN (without setting err) leaving the stream usable -- for event
 * subscriptions.
 */
int grpc_stream_recv(struct grpc_stream *s, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg,
                     struct cryo_error **err);
int grpc_stream_recv_wait(struct grpc_stream *s, const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **msg, int wait_ms, struct cryo_error **err);
/* For long transfers without an overall deadline: fail (-ETIMEDOUT, and
 * cancel) when a send or receive waits idle_ms without any input from
 * the server.  -1 disables. */
void grpc_stream_set_idle_timeout(struct grpc_stream *s, int idle_ms);
/* The final gRPC status once recv returned <= 0 (-1 if unknown). */
int grpc_stream_status(const struct grpc_stream *s);
/* Cancels the call (RST_STREAM CANCEL) if it has not ended; frees. */
void grpc_stream_free(struct grpc_stream *s);
static inline void grpc_stream_freep(struct grpc_stream **s) {
        if (*s)
                grpc_stream_free(*s);
}
#define _cleanup_grpc_stream_ _cleanup_(grpc_stream_freep)

static inline void grpc_message_freep(void *p) {
        ProtobufCMessage **m = p;
        if (*m)
                protobuf_c_message_free_unpacked(*m, NULL);
}
/* For any generated message pointer type, e.g.
 *   _cleanup_pb_ Containerd__Services__Containers__V1__GetContainerResponse *resp = NULL; */
#define _cleanup_pb_ _cleanup_(grpc_message_freep)
